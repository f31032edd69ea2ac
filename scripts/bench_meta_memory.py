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
from typing import Any

import torch
from bench_meta_common import (
    DIGITS_SIZE,
    SEED,
    SUPPORT,
    THREADS,
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


def child(kind: str, inner_steps: int, batch: int, threads: int) -> None:
    """One fresh process: build the GAN, the tasks and MAML; take one meta-step unless
    `kind` is "baseline"; print the peak memory as one JSON line."""
    configure_torch(threads)
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
    # the child computes with the parent's threads (bench_meta.py --threads)
    cmd = [sys.executable, __file__, "--child", kind, "--inner-steps", str(inner_steps),
           "--meta-batch", str(batch), "--threads", str(torch.get_num_threads())]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        reason = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        print(f"(child `{' '.join(cmd[2:])}` failed: {reason})\n")
        return None
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    for message in out["warnings"]:
        log.add(message, f"maml {kind} order, {inner_steps} steps")
    return out


def mib(n: float) -> float:
    return n / 2**20


@dataclass(frozen=True)
class Memory:
    """A meta-step's own peak memory in bytes, by order ("second", "first") and inner steps;
    `fixed` is that of a meta-step with 0 inner steps (meta-losses only), if it ran;
    `baseline` the peak RSS of a process that takes no meta-step (CPU only)."""

    own: dict[str, dict[int, float]]
    fixed: float | None
    baseline: float | None
    device: str

    def as_dict(self, plan: Plan, log: Warnings) -> dict[str, Any]:
        """The JSON form, in MiB: one row per inner-step count."""
        rows = [{"inner_steps": k, "second_mib": mib(self.own["second"][k]),
                 "first_mib": mib(self.own["first"][k])} for k in plan.memory_steps]  # fmt: skip
        return {
            "device": self.device,
            "meta_batch": plan.memory_batch,
            "support": SUPPORT,
            "baseline_mib": None if self.baseline is None else mib(self.baseline),
            "fixed_mib": None if self.fixed is None else mib(self.fixed),
            "rows": rows,
            "warnings": log.as_dict(),
        }


def measure_memory(plan: Plan, log: Warnings) -> Memory:
    """Table 2: one fresh process per cell."""
    gpu = torch.cuda.is_available()

    def own(kind: str, steps: int) -> float | None:
        out = run_child(kind, steps, plan.memory_batch, log)
        return None if out is None else out["peak"] - (out["base"] if gpu else baseline)

    baseline = 0.0
    if not gpu:
        base_out = run_child("baseline", 1, plan.memory_batch, log)
        if base_out is None:
            sys.exit("the baseline child failed; no memory figures")
        baseline = base_out["peak"]
    fixed = own("second", 0)
    table: dict[str, dict[int, float]] = {"second": {}, "first": {}}
    for order, figures in table.items():
        for steps in plan.memory_steps:
            value = own(order, steps)
            if value is None:
                sys.exit(f"the {order}-order child at {steps} inner steps failed")
            figures[steps] = value
            print(f"  memory, {order} order, {steps} inner steps: {mib(value):.1f} MiB", flush=True)
    return Memory(table, fixed, None if gpu else baseline, "cuda" if gpu else "cpu")


def memory_verdict(name: str, own: dict[int, float], fixed: float | None, target: bool) -> dict:
    """Growth from the fewest to the most inner steps against linear growth (in MiB).

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
    a, b, last = increments[-1]
    floor = max(4 * 2**20, 0.05 * own[hi]) / (b - a)
    superlinear = ratio > hi / lo or (
        len(increments) > 1 and last > 1.25 * max(increments[0][2], 0.0) + floor
    )
    return {
        "name": name,
        "steps": [lo, hi],
        "total_mib": [mib(own[lo]), mib(own[hi])],
        "above_fixed": fixed is not None,
        "grown_mib": [mib(grown[lo]), mib(grown[hi])],
        "per_step_mib": [[a, b, mib(d)] for a, b, d in increments],
        "superlinear": bool(superlinear),
        "target": target,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--child", choices=("baseline", "second", "first"), required=True)
    parser.add_argument("--inner-steps", type=int, default=1)
    parser.add_argument("--meta-batch", type=int, default=4)
    parser.add_argument("--threads", type=int, default=THREADS)
    args = parser.parse_args()
    child(args.child, args.inner_steps, args.meta_batch, args.threads)


if __name__ == "__main__":
    main()
