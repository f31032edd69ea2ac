"""Benchmark of the meta-algorithms' meta-steps: vectorized (vmap) vs sequential tasks per second,
and the memory of second- vs first-order MAML as the inner loop grows.

Writes the figures as JSON (`--json`, default docs/results/meta.json, which `make results`
renders into docs/results.md, naming the CPU, the threads and torch) and prints the same
tables (not a test: the figures depend on the machine and its load):

1. Tasks per second of Reptile (10 inner steps, 4 support images) and second-order MAML
   (5 inner steps, 4 support + 4 query images) on the default digits-sized DCGAN pair
   (16 x 16, width 32, WGAN-GP), at meta-batch 1, 4, 8 and 16, with `vectorize` on and off.
   Each setting is warmed up with one meta-step; then the two take timed meta-steps in turn
   (so that load from other processes falls on both alike) until each has 2 s and 2 steps;
   tasks/s = meta-batch * meta-steps / seconds. At meta-batch 1 both settings run the same
   (un-vmapped) path, so their difference there is timing noise.
2. Peak memory of one MAML meta-step, second order vs first order, at 1, 5 and 10 inner steps
   (meta-batch 4, vectorized). Each cell runs in a fresh subprocess
   (scripts/bench_meta_memory.py `--child`). On CPU the figure is the child's peak RSS
   (Linux: VmHWM, since `ru_maxrss` carries the parent's RSS over fork + exec) minus that of a
   child that builds everything but takes no meta-step; on a GPU it is
   `torch.cuda.max_memory_allocated` during the meta-step minus what was allocated before it.
3. Tasks per second of Reptile on FIGR's own architecture (`FIGRGenerator(100, 1, 32)`,
   `FIGRDiscriminator(1, 32)`, 32 x 32, 4 images per task, 10 inner steps): one task per
   meta-step, as FIGR, and vectorized vs sequential meta-batches of 4 and 8. Heavy on a CPU,
   so a cell is one timed meta-step after a single shared warm-up.

Every process keeps freed memory for reuse, as `metaaug` does (`hardware.reuse_memory`).
Then one verdict line per target: vectorized >= 3x sequential tasks/s at meta-batch 8, and
second-order memory growing no worse than linearly in the inner steps. Ops that vmap runs
through its slow per-sample fallback (no batching rule) are listed after each table.

    .venv/bin/python scripts/bench_meta.py           # full run, several minutes on 2 cores
    .venv/bin/python scripts/bench_meta.py --quick --json /tmp/meta.json   # smoke run, ~1 min
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import torch
from bench_meta_common import (
    DIGITS_SIZE,
    FIGR_SIZE,
    FULL,
    QUICK,
    SEED,
    SUPPORT,
    TARGET_SPEEDUP,
    THREADS,
    Plan,
    Warnings,
    configure_torch,
    digits_gan,
    figr_gan,
    load,
    maml,
    random_tasks,
    reptile,
)
from bench_meta_memory import measure_memory, memory_verdict
from machine import cpu_name
from render_results import meta as render_meta

from metaaug.data.tasks import Task
from metaaug.meta.base import MetaAlgorithm
from metaaug.meta.reptile import Reptile
from metaaug.models.gan import GAN

REPO = Path(__file__).resolve().parents[1]

# ---------------------------------------------------------------------------------- timing


@dataclass(frozen=True)
class Timing:
    batch: int
    steps: int
    seconds: float

    @property
    def tasks_per_s(self) -> float:
        return self.batch * self.steps / self.seconds

    def as_dict(self) -> dict[str, float]:
        return {"tasks_per_s": self.tasks_per_s, "steps": self.steps, "seconds": self.seconds}


def time_meta_steps(
    algo: MetaAlgorithm, gan: GAN, tasks: Task, min_seconds: float, min_steps: int
) -> Timing:
    """Meta-steps on the same tasks until both `min_seconds` and `min_steps` are reached."""
    rng = torch.Generator().manual_seed(SEED)
    steps, start = 0, time.perf_counter()
    while steps < min_steps or time.perf_counter() - start < min_seconds:
        algo.meta_step(gan, tasks, rng)
        steps += 1
    return Timing(tasks.support.shape[0], steps, time.perf_counter() - start)


def warm_up(algo: MetaAlgorithm, gan: GAN, tasks: Task) -> None:
    algo.meta_step(gan, tasks, torch.Generator().manual_seed(SEED + 1))


def measure(
    build_algo: Callable[[bool], MetaAlgorithm],
    build_gan: Callable[[], GAN],
    tasks: Task,
    vectorize: bool,
    plan: Plan,
    log: Warnings,
    where: str,
    warm: bool = True,
) -> Timing:
    """Tasks/s of one configuration, on a fresh GAN (so every cell starts from the same one)."""
    gan, algo = build_gan(), build_algo(vectorize)
    with log.recording(where):
        if warm:
            warm_up(algo, gan, tasks)
        return time_meta_steps(algo, gan, tasks, plan.min_seconds, plan.min_steps)


def measure_pair(
    build_algo: Callable[[bool], MetaAlgorithm],
    build_gan: Callable[[], GAN],
    tasks: Task,
    plan: Plan,
    log: Warnings,
    where: str,
    warm: bool = True,
) -> dict[bool, Timing]:
    """Tasks/s vectorized (True) and sequential (False), each on a fresh GAN.

    The two take meta-steps in turn, the one with less time so far going next, until both
    have `min_seconds` and `min_steps`: load from other processes then falls on both alike.
    """
    runs = {v: (build_gan(), build_algo(v), torch.Generator().manual_seed(SEED)) for v in (1, 0)}
    spent, steps = {1: 0.0, 0: 0.0}, {1: 0, 0: 0}

    def done(v: int) -> bool:
        return steps[v] >= plan.min_steps and spent[v] >= plan.min_seconds

    with log.recording(where):
        if warm:
            for gan, algo, _ in runs.values():
                warm_up(algo, gan, tasks)
        while not (done(1) and done(0)):
            v = min((k for k in runs if not done(k)), key=lambda k: spent[k])
            gan, algo, rng = runs[v]
            start = time.perf_counter()
            algo.meta_step(gan, tasks, rng)
            spent[v] += time.perf_counter() - start
            steps[v] += 1
    batch = tasks.support.shape[0]
    return {bool(v): Timing(batch, steps[v], spent[v]) for v in runs}


def speed_row(label: str, batch: int, vec: Timing | None, seq: Timing) -> dict[str, Any]:
    """One row of a speed table; `vec` None where only the sequential path ran."""
    row = {"algorithm": label, "meta_batch": batch, "sequential": seq.as_dict(),
           "vectorized": None if vec is None else vec.as_dict(),
           "speedup": None if vec is None else vec.tasks_per_s / seq.tasks_per_s}  # fmt: skip
    vec_text = "(same path)" if vec is None else f"{vec.tasks_per_s:.2f}"
    print(f"  {label}, meta-batch {batch}: {vec_text} vectorized, {seq.tasks_per_s:.2f} "
          "sequential tasks/s", flush=True)  # fmt: skip
    return row


def table_speed(plan: Plan, log: Warnings) -> dict[str, Any]:
    """Table 1: tasks/s on the digits DCGAN, vectorized vs sequential."""
    print("tasks/s on the digits DCGAN, vectorized vs sequential", flush=True)
    before = load()
    configs: list[tuple[str, Callable[[bool], MetaAlgorithm], int]] = [
        ("reptile", lambda v: reptile(plan.reptile_steps, v), 0),
        ("maml", lambda v: maml(plan.maml_steps, v), SUPPORT),
    ]
    rows = []
    for name, build, query in configs:
        for batch in plan.meta_batches:
            tasks = random_tasks(batch, SUPPORT, query, DIGITS_SIZE)
            timings = measure_pair(build, digits_gan, tasks, plan, log, f"{name} mb{batch}")
            rows.append(speed_row(name, batch, timings[True], timings[False]))
    return {
        "support": SUPPORT,
        "reptile_inner_steps": plan.reptile_steps,
        "maml_inner_steps": plan.maml_steps,
        "min_seconds": plan.min_seconds,
        "min_steps": plan.min_steps,
        "load_before": before,
        "load_after": load(),
        "rows": rows,
        "warnings": log.as_dict(),
    }


def table_figr(plan: Plan, log: Warnings) -> dict[str, Any]:
    """Table 3: Reptile on FIGR's architecture."""
    print(f"Reptile tasks/s on FIGR's architecture ({FIGR_SIZE} x {FIGR_SIZE})", flush=True)
    before = load()
    gan = figr_gan()
    params = sum(p.numel() for p in gan.parameters())
    with log.recording("figr warm-up"):
        warm_up(reptile(1, False), gan, random_tasks(1, SUPPORT, 0, FIGR_SIZE))
    one_step = replace(plan, min_seconds=0.0, min_steps=1)

    def build(vectorize: bool) -> Reptile:
        return reptile(plan.figr_steps, vectorize)

    tasks = random_tasks(1, SUPPORT, 0, FIGR_SIZE)
    figr = measure(build, figr_gan, tasks, False, one_step, log, "figr mb1", warm=False)
    rows = [speed_row("reptile (FIGR: 1 task/step)", 1, None, figr)]
    for batch in plan.figr_batches:
        tasks = random_tasks(batch, SUPPORT, 0, FIGR_SIZE)
        pair = measure_pair(build, figr_gan, tasks, one_step, log, f"figr mb{batch}", warm=False)
        rows.append(speed_row("reptile", batch, pair[True], pair[False]))
    return {
        "size": FIGR_SIZE,
        "params_m": params / 1e6,
        "support": SUPPORT,
        "inner_steps": plan.figr_steps,
        "load_before": before,
        "load_after": load(),
        "rows": rows,
        "warnings": log.as_dict(),
    }


def speed_verdict(name: str, speed: dict[str, Any], algorithm: str) -> dict[str, Any]:
    """Vectorized against sequential tasks/s at meta-batch 8 (if measured) and the target."""
    at8 = [r["speedup"] for r in speed["rows"] if r["algorithm"] == algorithm
           and r["meta_batch"] == 8]  # fmt: skip
    speedup = at8[0] if at8 else None
    met = None if speedup is None else bool(speedup >= TARGET_SPEEDUP)
    return {"name": name, "meta_batch": 8, "speedup": speedup, "target": TARGET_SPEEDUP,
            "met": met}  # fmt: skip


# ---------------------------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0].replace("\n", " "))
    parser.add_argument("--quick", action="store_true", help="fast smoke run (about a minute)")
    parser.add_argument("--json", default=str(REPO / "docs" / "results" / "meta.json"))
    parser.add_argument("--threads", type=int, default=THREADS, help="torch intra-op threads")
    args = parser.parse_args()
    configure_torch(args.threads)
    plan = QUICK if args.quick else FULL
    start = time.perf_counter()
    speed = table_speed(plan, Warnings())
    log = Warnings()
    memory = measure_memory(plan, log)
    figr = table_figr(plan, Warnings())
    data = {
        "bench": "meta",
        "quick": args.quick,
        "cpu": cpu_name(),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "cuda": torch.cuda.is_available(),
        "threads": torch.get_num_threads(),
        "interop_threads": torch.get_num_interop_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "seed": SEED,
        "plan": asdict(plan),
        "speed": speed,
        "memory": memory.as_dict(plan, log),
        "figr": figr,
        "verdicts": {
            "speed": [
                speed_verdict("reptile", speed, "reptile"),
                speed_verdict("maml (second order)", speed, "maml"),
            ],
            "memory": [
                memory_verdict("second-order MAML", memory.own["second"], memory.fixed, True),
                memory_verdict(
                    "(no target) first-order MAML", memory.own["first"], memory.fixed, False
                ),
            ],
        },
        "wall_s": time.perf_counter() - start,
    }
    path = Path(args.json)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=1, allow_nan=False) + "\n")
    print(f"\n{render_meta(data)}\n\nwrote {path}")


if __name__ == "__main__":
    main()
