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
   (meta-batch 4, vectorized). Each cell runs in a fresh subprocess (this script with the
   hidden `--child` argument). On CPU the figure is the child's peak RSS (Linux: VmHWM, since
   `ru_maxrss` carries the parent's RSS over fork + exec) minus that of a child that builds
   everything but takes no meta-step; on a GPU it is
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
import itertools
import json
import os
import platform
import re
import resource
import subprocess
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch

from metaaug import hardware
from metaaug.data.tasks import Task
from metaaug.meta.base import MetaAlgorithm
from metaaug.meta.maml import MAML
from metaaug.meta.reptile import Reptile
from metaaug.meta.settings import Adversarial, OptimizerSpec
from metaaug.models.figr import FIGRDiscriminator, FIGRGenerator
from metaaug.models.gan import GAN, DCGANDiscriminator, DCGANGenerator

THREADS = 2
SEED = 0
SUPPORT = 4
DIGITS_SIZE = 16
FIGR_SIZE = 32
TARGET_SPEEDUP = 3.0
FALLBACK = re.compile(r"batching rule for (\S+?)\.? Please")


@dataclass(frozen=True)
class Plan:
    """What a run measures: the full benchmark or the --quick smoke run."""

    meta_batches: tuple[int, ...]
    min_seconds: float  # timed seconds per Table 1 cell (after one warm-up meta-step)
    min_steps: int
    reptile_steps: int
    maml_steps: int
    memory_steps: tuple[int, ...]
    memory_batch: int
    figr_steps: int
    figr_batches: tuple[int, ...]


FULL = Plan((1, 4, 8, 16), 2.0, 2, 10, 5, (1, 5, 10), 4, 10, (4, 8))
QUICK = Plan((1, 8), 0.0, 1, 10, 5, (1, 2), 4, 2, (2,))


@dataclass
class Warnings:
    """Ops that vmap ran without a batching rule, and any other warnings, by configuration."""

    fallbacks: dict[str, set[str]] = field(default_factory=dict)
    other: dict[str, set[str]] = field(default_factory=dict)

    def add(self, message: str, where: str) -> None:
        match = FALLBACK.search(message)
        if match:
            self.fallbacks.setdefault(match.group(1), set()).add(where)
        else:
            self.other.setdefault(message.splitlines()[0][:160], set()).add(where)

    @contextmanager
    def recording(self, where: str) -> Iterator[None]:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            yield
        for w in caught:
            self.add(str(w.message), where)

    def report(self) -> str:
        lines = []
        if self.fallbacks:
            for op, where in sorted(self.fallbacks.items()):
                lines.append(f"- vmap fallback (no batching rule) for `{op}`: {_join(where)}")
        else:
            lines.append("- vmap fallbacks (ops without a batching rule): none")
        for message, where in sorted(self.other.items()):
            lines.append(f"- warning `{message}`: {_join(where)}")
        return "\n".join(lines)


def _join(items: set[str]) -> str:
    return ", ".join(sorted(items))


def configure_torch() -> None:
    torch.set_num_threads(THREADS)
    hardware.reuse_host_memory()  # as `metaaug` runs (hardware.reuse_memory=true)
    # off by default: makes vmap warn for each op it runs through the per-sample fallback
    torch._C._functorch._set_vmap_fallback_warning_enabled(True)


def cpu_name() -> str:
    name = platform.processor()
    cpuinfo = Path("/proc/cpuinfo")
    if not name and cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return name or platform.machine()


def load() -> str:
    if not hasattr(os, "getloadavg"):
        return "n/a"
    return " / ".join(f"{x:.2f}" for x in os.getloadavg())


# ---------------------------------------------------------------------------------- building


def digits_gan() -> GAN:
    torch.manual_seed(SEED)
    return GAN(
        DCGANGenerator(64, 1, DIGITS_SIZE, width=32), DCGANDiscriminator(1, DIGITS_SIZE, width=32)
    )


def figr_gan() -> GAN:
    torch.manual_seed(SEED)
    return GAN(FIGRGenerator(100, 1, FIGR_SIZE), FIGRDiscriminator(1, FIGR_SIZE))


def random_tasks(batch: int, support: int, query: int, size: int) -> Task:
    """`batch` tasks of random images in [-1, 1], shaped [B, S, 1, size, size]."""
    gen = torch.Generator().manual_seed(SEED)
    s = torch.rand(batch, support, 1, size, size, generator=gen) * 2 - 1
    q = torch.rand(batch, query, 1, size, size, generator=gen) * 2 - 1
    return Task(s, q, tuple(f"class{i}" for i in range(batch)))


def reptile(inner_steps: int, vectorize: bool) -> Reptile:
    return Reptile(
        inner_steps, OptimizerSpec("sgd", 1e-3), meta_lr=1e-4, adversarial=Adversarial(),
        vectorize=vectorize,
    )  # fmt: skip


def maml(inner_steps: int, vectorize: bool, first_order: bool = False) -> MAML:
    return MAML(
        inner_steps, OptimizerSpec("sgd", 1e-3), meta_lr=1e-4, adversarial=Adversarial(),
        first_order=first_order, vectorize=vectorize,
    )  # fmt: skip


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


def peak_rss() -> int:
    """This process's peak resident set size in bytes.

    On Linux, VmHWM of /proc/self/status: `ru_maxrss` survives fork + exec, so a child started
    from this (large) process would report the parent's RSS at the fork as its own peak.
    """
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss if sys.platform == "darwin" else rss * 1024  # bytes on macOS, KiB elsewhere


def child(kind: str, inner_steps: int, batch: int) -> None:
    """One fresh process: build the GAN, the tasks and MAML; take one meta-step unless
    `kind` is "baseline"; print the peak memory as one JSON line."""
    configure_torch()
    cuda = torch.cuda.is_available()
    device = torch.device("cuda" if cuda else "cpu")
    gan = digits_gan().to(device)
    tasks = random_tasks(batch, SUPPORT, SUPPORT, DIGITS_SIZE)
    algo = maml(inner_steps, True, first_order=kind == "first")
    base = 0
    if cuda:
        torch.cuda.synchronize()
        base = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        if kind != "baseline":
            algo.meta_step(gan, tasks, torch.Generator().manual_seed(SEED))
    if cuda:
        torch.cuda.synchronize()
        peak = torch.cuda.max_memory_allocated()
    else:
        peak = peak_rss()
    messages = sorted({str(w.message) for w in caught})
    out = {"device": device.type, "peak": peak, "base": base, "warnings": messages}
    print(json.dumps(out))


def run_child(kind: str, inner_steps: int, batch: int, log: Warnings) -> dict | None:
    """Run one `--child` process; None (with the reason printed) if it failed."""
    cmd = [sys.executable, __file__, "--child", kind, "--inner-steps", str(inner_steps),
           "--meta-batch", str(batch)]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        reason = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        print(f"(child `{' '.join(cmd[2:])}` failed: {reason})\n")
        return None
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    for message in out["warnings"]:
        log.add(message, f"maml {kind} order, {inner_steps} steps")
    return out


def mib(n: float) -> str:
    return f"{n / 2**20:.1f}"


@dataclass(frozen=True)
class Memory:
    """A meta-step's own peak memory in bytes, by order ("second", "first") and inner steps;
    `fixed` is that of a meta-step with 0 inner steps (meta-losses only), if it ran."""

    own: dict[str, dict[int, float]]
    fixed: float | None


def memory_cell(total: float, fixed: float | None, one: float) -> str:
    """'MiB above the 0-step meta-step (x vs 1 step)', or '—' without the 0-step figure."""
    if fixed is None:
        return "—"
    return f"{mib(total - fixed)} ({(total - fixed) / (one - fixed):.2f}x)"


def table_memory(plan: Plan, log: Warnings) -> Memory:
    """Table 2: one fresh process per cell."""
    gpu = torch.cuda.is_available()
    print("## 2. Peak memory of one MAML meta-step: second order vs first order\n")
    how = (
        "`torch.cuda.max_memory_allocated` during the meta-step minus the memory allocated "
        "before it"
        if gpu
        else "peak RSS (VmHWM) of a fresh process that takes one meta-step (no warm-up) minus "
        "the peak RSS of one that builds the same objects and takes none"
    )
    print(
        f"Digits DCGAN, meta-batch {plan.memory_batch} (vectorized), {SUPPORT} support + "
        f"{SUPPORT} query, inner SGD. Figure: {how}. Row 0 is a meta-step with no inner "
        f"steps (the meta-losses and their vjp only, the same for both orders): the fixed "
        f"part, which the 'above 0 steps' columns subtract to show the inner loop's own "
        f"growth.\n"
    )

    def own(kind: str, steps: int) -> float | None:
        out = run_child(kind, steps, plan.memory_batch, log)
        return None if out is None else out["peak"] - (out["base"] if gpu else baseline)

    baseline = 0.0
    if not gpu:
        base_out = run_child("baseline", 1, plan.memory_batch, log)
        if base_out is None:
            sys.exit("the baseline child failed; no memory figures")
        baseline = base_out["peak"]
        print(f"Baseline process (imports, GAN, tasks, no meta-step): {mib(baseline)} MiB.\n")
    fixed = own("second", 0)
    table: dict[str, dict[int, float]] = {"second": {}, "first": {}}
    for order, figures in table.items():
        for steps in plan.memory_steps:
            value = own(order, steps)
            if value is None:
                sys.exit(f"the {order}-order child at {steps} inner steps failed")
            figures[steps] = value
    print(
        "| inner steps | second order MiB | x vs 1 step | first order MiB | x vs 1 step "
        "| second order above 0 steps MiB (x vs 1 step) | first order above 0 steps MiB "
        "(x vs 1 step) | second / first |"
    )
    print("|---|---|---|---|---|---|---|---|")
    if fixed is not None:
        print(f"| 0 | {mib(fixed)} | — | {mib(fixed)} | — | 0 | 0 | 1.00 |")
    so1, fo1 = (table[o][plan.memory_steps[0]] for o in ("second", "first"))
    for steps in plan.memory_steps:
        so, fo = table["second"][steps], table["first"][steps]
        print(
            f"| {steps} | {mib(so)} | {so / so1:.2f} | {mib(fo)} | {fo / fo1:.2f} "
            f"| {memory_cell(so, fixed, so1)} | {memory_cell(fo, fixed, fo1)} | {so / fo:.2f} |"
        )
    print("\n" + log.report() + "\n")
    return Memory(table, fixed)


def memory_verdict(name: str, own: dict[int, float], fixed: float | None, target: bool) -> str:
    """Growth from the fewest to the most inner steps against linear growth.

    Judged on the memory above the 0-step meta-step where that ran (else on the totals):
    superlinear if it grows by more than the ratio of the steps, or if the memory added per
    step in the last interval exceeds that of the first by more than 25 % plus a noise floor
    (RSS moves by a few MiB from run to run: 5 % of the largest total, at least 4 MiB, spread
    over the interval's steps).
    """
    steps = sorted(own)
    lo, hi = steps[0], steps[-1]
    grown = {k: v - (fixed or 0.0) for k, v in own.items()}
    ratio = grown[hi] / grown[lo]
    increments = [(a, b, (own[b] - own[a]) / (b - a)) for a, b in itertools.pairwise(steps)]
    inc_text = ", ".join(f"{a}->{b}: {mib(d)} MiB/step" for a, b, d in increments)
    a, b, last = increments[-1]
    floor = max(4 * 2**20, 0.05 * own[hi]) / (b - a)
    superlinear = ratio > hi / lo or (
        len(increments) > 1 and last > 1.25 * max(increments[0][2], 0.0) + floor
    )
    verdict = "superlinear" if superlinear else "no worse than linear"
    if target:
        verdict = f"NOT MET ({verdict})" if superlinear else f"met ({verdict})"
    part = "above the 0-step meta-step" if fixed is not None else "total"
    return (
        f"- {name} memory {lo} -> {hi} inner steps: total {mib(own[lo])} -> {mib(own[hi])} MiB "
        f"({own[hi] / own[lo]:.2f}x); {part} {mib(grown[lo])} -> {mib(grown[hi])} MiB "
        f"({ratio:.2f}x for {hi / lo:g}x the steps); added per step {inc_text}: {verdict}"
    )


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
    parser.add_argument("--child", choices=("baseline", "second", "first"), help=argparse.SUPPRESS)
    parser.add_argument("--inner-steps", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--meta-batch", type=int, default=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.inner_steps, args.meta_batch)
        return
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
