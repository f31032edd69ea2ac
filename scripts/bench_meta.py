"""Benchmark of the meta-algorithms' meta-steps: vectorized (vmap) vs sequential tasks per second,
and the memory of second- vs first-order MAML as the inner loop grows.

Prints markdown tables (not a test: the figures depend on the machine and its load):

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
    .venv/bin/python scripts/bench_meta.py --quick   # smoke run, about a minute
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

import torch
from bench_meta_common import (
    DIGITS_SIZE,
    FIGR_SIZE,
    FULL,
    QUICK,
    SEED,
    SUPPORT,
    TARGET_SPEEDUP,
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
from bench_meta_memory import memory_verdict, table_memory
from machine import cpu_name

from metaaug.data.tasks import Task
from metaaug.meta.base import MetaAlgorithm
from metaaug.meta.reptile import Reptile
from metaaug.models.gan import GAN

# ---------------------------------------------------------------------------------- timing


@dataclass(frozen=True)
class Timing:
    batch: int
    steps: int
    seconds: float

    @property
    def tasks_per_s(self) -> float:
        return self.batch * self.steps / self.seconds


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


def speed_row(label: str, batch: int, vec: Timing | None, seq: Timing) -> str:
    vec_cell = "(same path)" if vec is None else f"{vec.tasks_per_s:.2f}"
    ratio = "—" if vec is None else f"{vec.tasks_per_s / seq.tasks_per_s:.2f}x"
    steps = f"— / {seq.steps}" if vec is None else f"{vec.steps} / {seq.steps}"
    per_step = f"{seq.seconds / seq.steps:.2f}" if vec is None else (
        f"{vec.seconds / vec.steps:.2f} / {seq.seconds / seq.steps:.2f}"
    )  # fmt: skip
    return (
        f"| {label} | {batch} | {vec_cell} | {seq.tasks_per_s:.2f} | {ratio} | {steps} "
        f"| {per_step} |"
    )


SPEED_HEADER = (
    "| algorithm | meta-batch | vectorized tasks/s | sequential tasks/s | speed-up "
    "| meta-steps timed (vec / seq) | s per meta-step (vec / seq) |\n"
    "|---|---|---|---|---|---|---|"
)


def table_speed(plan: Plan, log: Warnings) -> dict[str, float]:
    """Table 1; returns the speed-up at meta-batch 8 per algorithm (if measured)."""
    print(
        "## 1. Tasks/s on the digits DCGAN (16 x 16, width 32, WGAN-GP), vectorized vs sequential\n"
    )
    print(
        f"Reptile: {plan.reptile_steps} inner steps, {SUPPORT} support, 0 query. "
        f"MAML (second order): {plan.maml_steps} inner steps, {SUPPORT} support, {SUPPORT} "
        f"query. Inner SGD lr 1e-3, outer Adam lr 1e-4. One warm-up meta-step per setting, "
        f"then vectorized and sequential take timed meta-steps in turn until each has at "
        f"least {plan.min_seconds:g} s and {plan.min_steps} meta-step(s). Load average before: "
        f"{load()}.\n"
    )
    print(SPEED_HEADER)
    configs: list[tuple[str, Callable[[bool], MetaAlgorithm], int]] = [
        ("reptile", lambda v: reptile(plan.reptile_steps, v), 0),
        ("maml", lambda v: maml(plan.maml_steps, v), SUPPORT),
    ]
    speedups = {}
    for name, build, query in configs:
        for batch in plan.meta_batches:
            tasks = random_tasks(batch, SUPPORT, query, DIGITS_SIZE)
            timings = measure_pair(build, digits_gan, tasks, plan, log, f"{name} mb{batch}")
            print(speed_row(name, batch, timings[True], timings[False]), flush=True)
            if batch == 8:
                speedups[name] = timings[True].tasks_per_s / timings[False].tasks_per_s
    print(f"\nLoad average after: {load()}.\n")
    print(log.report() + "\n")
    return speedups


def table_figr(plan: Plan, log: Warnings) -> None:
    """Table 3: Reptile on FIGR's architecture."""
    print(f"## 3. Reptile tasks/s on FIGR's architecture ({FIGR_SIZE} x {FIGR_SIZE})\n")
    gan = figr_gan()
    params = sum(p.numel() for p in gan.parameters())
    print(
        f"`FIGRGenerator(100, 1, {FIGR_SIZE})` + `FIGRDiscriminator(1, {FIGR_SIZE})` "
        f"({params / 1e6:.1f} M parameters), WGAN-GP, {SUPPORT} images per task, "
        f"{plan.figr_steps} inner steps, inner SGD lr 1e-3, outer Adam lr 1e-4. One shared "
        f"warm-up meta-step (1 task, 1 inner step), then one timed meta-step per cell. Load "
        f"average before: {load()}.\n"
    )
    with log.recording("figr warm-up"):
        warm_up(reptile(1, False), gan, random_tasks(1, SUPPORT, 0, FIGR_SIZE))
    one_step = replace(plan, min_seconds=0.0, min_steps=1)
    print(SPEED_HEADER)

    def build(vectorize: bool) -> Reptile:
        return reptile(plan.figr_steps, vectorize)

    tasks = random_tasks(1, SUPPORT, 0, FIGR_SIZE)
    figr = measure(build, figr_gan, tasks, False, one_step, log, "figr mb1", warm=False)
    print(speed_row("reptile (FIGR: 1 task/step)", 1, None, figr), flush=True)
    for batch in plan.figr_batches:
        tasks = random_tasks(batch, SUPPORT, 0, FIGR_SIZE)
        pair = measure_pair(build, figr_gan, tasks, one_step, log, f"figr mb{batch}", warm=False)
        print(speed_row("reptile", batch, pair[True], pair[False]), flush=True)
    print(f"\nLoad average after: {load()}.\n")
    print(log.report() + "\n")


# ---------------------------------------------------------------------------------- memory


def speed_verdict(name: str, speedup: float | None) -> str:
    if speedup is None:
        return f"- {name} at meta-batch 8: not measured in this mode"
    met = "met" if speedup >= TARGET_SPEEDUP else "NOT MET"
    return (
        f"- {name} vectorized / sequential tasks/s at meta-batch 8: {speedup:.2f}x "
        f"(target >= {TARGET_SPEEDUP:g}x): {met}"
    )


# ---------------------------------------------------------------------------------- main


def header(plan: Plan, quick: bool) -> None:
    print("# Meta-step benchmark\n")
    print(f"- mode: {'--quick (smoke run, figures not for reporting)' if quick else 'full'}")
    print(f"- torch {torch.__version__}, intra-op threads {torch.get_num_threads()}, "
          f"inter-op threads {torch.get_num_interop_threads()}")  # fmt: skip
    print(f"- machine: {cpu_name()} ({platform.machine()}), os.cpu_count() = {os.cpu_count()}, "
          f"CUDA available: {torch.cuda.is_available()}")  # fmt: skip
    print(f"- python {platform.python_version()}, load average (1/5/15 min) {load()}\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0].replace("\n", " "))
    parser.add_argument("--quick", action="store_true", help="fast smoke run (about a minute)")
    args = parser.parse_args()
    configure_torch()
    plan = QUICK if args.quick else FULL
    start = time.perf_counter()
    header(plan, args.quick)
    speedups = table_speed(plan, Warnings())
    memory = table_memory(plan, Warnings())
    table_figr(plan, Warnings())
    print("## Verdicts\n")
    print(speed_verdict("reptile", speedups.get("reptile")))
    print(speed_verdict("maml (second order)", speedups.get("maml")))
    print(memory_verdict("second-order MAML", memory.own["second"], memory.fixed, True))
    first = memory.own["first"]
    print(memory_verdict("(no target) first-order MAML", first, memory.fixed, False))
    print(f"\nTotal wall time {time.perf_counter() - start:.0f} s.")


if __name__ == "__main__":
    main()
