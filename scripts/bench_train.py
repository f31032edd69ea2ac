"""Benchmark of `metaaug train`: wall time, meta-iterations per second, and the quality of the
meta-learned GAN against the scratch and pretrain baselines after 10, 50 and 200 fine-tune
steps.

Runs the real command (subprocesses, as a user would) and prints markdown tables for
docs/results.md. Not a test: figures depend on the machine.

    python scripts/bench_train.py                  # digits default + shared Omniglot subset
    python scripts/bench_train.py --skip-omniglot  # digits only
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
OMNIGLOT = REPO.parent / "shared" / "data" / "omniglot"
STEPS = (10, 50, 200)


def train(run_dir: Path, *overrides: str) -> tuple[dict, float]:
    """Run `metaaug train`; returns (metrics.json, wall seconds)."""
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "metaaug.cli", "train", *overrides, f"hydra.run.dir={run_dir}"],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        sys.exit(f"metaaug train {' '.join(overrides)} failed:\n{proc.stderr[-3000:]}")
    return json.loads((run_dir / "metrics.json").read_text()), wall


COLUMNS = (("fidelity", "fidelity", "{:.2f}"), ("fid", "FID", "{:.0f}"),
           ("memorization", "memo", "{:.2f}"))  # fmt: skip


def _cell(values: list[float], fmt: str) -> str:
    """mean ± sd over targets (the mean alone for one target)."""
    mean = statistics.fmean(values)
    if len(values) == 1:
        return fmt.format(mean)
    return f"{fmt.format(mean)} ± {fmt.format(statistics.stdev(values))}"


def curve_table(title: str, report: dict) -> str:
    targets = report["targets"]
    arms = [a for a in report["curves"] if report["curves"][a]]
    copies = report["results"]["copy_shots"]
    names = ", ".join(f"`{t['class_name']}`" for t in targets)
    over = f"mean ± sd over {len(targets)} targets ({names})" if len(targets) > 1 else names
    lines = [
        f"**{title}** — {over}, {report['target']['shots']} shots, "
        f"{report['meta_iterations']} meta-iterations; fidelity ceiling {copies['ceiling']:.2f}; "
        f"copying the shots scores fidelity {copies['fidelity']:.2f}, FID {copies['fid']:.2f}, "
        "memorization 0.",
        "",
        "| init | " + " | ".join(f"{name} @{s}" for _, name, _ in COLUMNS for s in STEPS) + " |",
        "|---" * (1 + len(COLUMNS) * len(STEPS)) + "|",
    ]  # fmt: skip
    for arm in arms:
        cells = [_cell([t["curves"][arm][str(s)][key] for t in targets], fmt)
                 for key, _, fmt in COLUMNS for s in STEPS]  # fmt: skip
        lines.append(f"| {arm} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-omniglot", action="store_true")
    parser.add_argument("--omniglot-iterations", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    out = Path(tempfile.mkdtemp(prefix="metaaug-bench-"))
    seed = f"seed={args.seed}"
    curve = [f"finetune.steps={STEPS[-1]}", f"finetune.eval_steps=[{','.join(map(str, STEPS))}]"]

    # warm the domain-classifier cache so the default run's wall time is the steady state
    train(out / "warmup", seed, "meta_algo.iterations=1", "finetune.steps=1", "validation.every=0")
    report, wall = train(out / "default", seed)
    timing = report["timing"]
    print("## `metaaug train` with the defaults (digits)\n")
    print("| wall time | meta-train (validation incl.) | meta-it/s | pretrain baseline "
          "| fine-tune, generate, measure (all arms) |")  # fmt: skip
    print("|---|---|---|---|---|")
    print(
        f"| {wall:.1f} s | {timing['meta_train_s']:.1f} s | {timing['meta_it_per_s']:.1f} | "
        f"{timing.get('pretrain_s', 0):.1f} s | {timing['adapt_and_measure_s']:.1f} s |\n"
    )

    report, _ = train(out / "digits", seed, "target.classes=all", *curve)
    print(curve_table("digits (defaults)", report) + "\n")

    if not args.skip_omniglot:
        if not (OMNIGLOT / "images_background_small1.zip").exists():
            print(f"(Omniglot skipped: {OMNIGLOT} not found)")
            return
        report, wall = train(
            out / "omniglot", seed, "dataset=omniglot", f"dataset.root={OMNIGLOT}",
            f"meta_algo.iterations={args.omniglot_iterations}", "validation.every=500",
            "target.classes=5", *curve,
        )  # fmt: skip
        print(curve_table("Omniglot small1 subset, 32x32", report))
        print(f"\n(wall {wall:.0f} s, {report['timing']['meta_it_per_s']:.1f} meta-it/s)")
    print(f"\nrun directories: {out}")


if __name__ == "__main__":
    main()
