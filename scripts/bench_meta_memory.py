"""The memory part of scripts/bench_meta.py: the peak memory of one MAML meta-step, second vs
first order, as the inner loop grows, each cell in a fresh process (this file, `--child`).

    .venv/bin/python scripts/bench_meta_memory.py --child second --inner-steps 5  # one cell
"""

from __future__ import annotations

import argparse
import itertools
import json
import resource
import subprocess
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
from bench_meta_common import (
    DIGITS_SIZE,
    SEED,
    SUPPORT,
    Plan,
    Warnings,
    configure_torch,
    digits_gan,
    maml,
    random_tasks,
)


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--child", choices=("baseline", "second", "first"), required=True)
    parser.add_argument("--inner-steps", type=int, default=1)
    parser.add_argument("--meta-batch", type=int, default=4)
    args = parser.parse_args()
    child(args.child, args.inner_steps, args.meta_batch)


if __name__ == "__main__":
    main()
