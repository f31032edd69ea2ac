"""Quality figure: every initialization after 10, 50, 200 and 500 fine-tune steps, over seeds.

For each seed, runs `metaaug train` once per `meta_algo` (reptile, maml, fomaml, metasgd,
scratch, pretrain; baselines off, so each arm is trained once), each measuring its quality
curve with `finetune.eval_steps`. Per arm and step: novel_fidelity, fidelity, copies,
memorization, the domain FID and KID (those metrics.json has) as the mean and 95% interval
over seeds (a seed sets the split, the target and the initialization), copy_shots beside
them, and each arm minus scratch paired per seed (the same split, target and shots). Writes
the figures as JSON (`--json`, default docs/results/quality.json, which `make results` renders
into docs/results.md) and prints the same tables. Not a test: a full run on the shared
Omniglot subset takes hours on a 2-core CPU.

    python scripts/bench_quality.py                       # Omniglot subset, seeds 0,1,2
    python scripts/bench_quality.py --quick --seeds 0,1 --threads 1 --json /tmp/q.json  # smoke
    python scripts/bench_quality.py --iterations 2000 -- meta_algo.vectorize=false
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import torch
from machine import cpu_name
from recipe_summary import COPY_SHOTS, interval
from render_results import quality as render_quality

REPO = Path(__file__).resolve().parents[1]
OMNIGLOT = REPO.parent / "shared" / "data" / "omniglot"
ALGOS = ("reptile", "maml", "fomaml", "metasgd", "pretrain", "scratch")
# the figures of each arm, where metrics.json has them (novel_fidelity and copies need the
# fidelity classifier); the paired table shows the first three
METRICS = ("novel_fidelity", "fidelity", "copies", "memorization", "fid", "kid")
PAIRED = ("novel_fidelity", "fidelity", "fid")
REFERENCE = "scratch"  # the goal: as good after 50 steps as scratch after up to 200


def run(run_dir: Path, overrides: list[str]) -> dict:
    """One `metaaug train`; returns its metrics.json."""
    cmd = [sys.executable, "-m", "metaaug.cli", "train", *overrides, f"hydra.run.dir={run_dir}"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{proc.stderr[-3000:]}")
    return json.loads((run_dir / "metrics.json").read_text())


def _value(x: Any) -> float:
    return math.nan if x is None else float(x)


def summarize(reports: dict[str, list[dict]], steps: list[int]) -> dict[str, Any]:
    """`reports[algo]` = that algo's metrics.json per seed: per arm, step and metric the
    interval over seeds, copy_shots, and each arm minus the reference paired per seed."""

    def per_seed(algo: str, step: int, metric: str) -> list[float]:
        # a run's curve point is its mean over its targets: one observation per seed
        return [_value(r["curves"][algo][str(step)].get(metric)) for r in reports[algo]]

    def paired(algo: str, step: int, metric: str) -> dict[str, Any]:
        pairs = zip(per_seed(algo, step, metric), per_seed(REFERENCE, step, metric), strict=True)
        return interval([a - b for a, b in pairs])

    measured = {m for algo, rs in reports.items() for r in rs for s in steps
                for m, v in r["curves"][algo][str(s)].items() if v is not None}  # fmt: skip
    metrics = [m for m in METRICS if m in measured]
    compared = [m for m in PAIRED if m in metrics]
    table = {algo: {str(s): {m: interval(per_seed(algo, s, m)) for m in metrics} for s in steps}
             for algo in reports}  # fmt: skip
    differences = {algo: {str(s): {m: paired(algo, s, m) for m in compared} for s in steps}
                   for algo in reports if algo != REFERENCE}  # fmt: skip
    # the shots themselves: no fine-tune, the same in every run of a seed
    copies = [r["results"].get(COPY_SHOTS) for r in reports[ALGOS[0]]]
    copy_shots = None
    if all(copies):
        copy_shots = {m: interval([_value(c.get(m)) for c in copies]) for m in metrics}
    return {"metrics": metrics, "paired_metrics": compared, "table": table,
            "paired": differences, "copy_shots": copy_shots}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="digits, tiny budgets")
    parser.add_argument("--seeds", default="0,1,2", help="comma-separated seeds")
    parser.add_argument("--threads", type=int, default=1,
                        help="hardware.threads of each run (an override wins)")  # fmt: skip
    parser.add_argument("--iterations", type=int, default=1000, help="meta-iterations")
    parser.add_argument("--json", default=str(REPO / "docs" / "results" / "quality.json"))
    parser.add_argument("extra", nargs="*", help="overrides passed to every run")
    args = parser.parse_args()
    seeds = [int(x) for x in args.seeds.split(",")]

    steps = [2, 5] if args.quick else [10, 50, 200, 500]
    if args.quick:
        common = ["meta_algo.iterations=3", "baselines.pretrain.iterations=3",
                  "metric.min_steps=0", "metric.fidelity.steps_per_class=0",
                  "metric.epochs=1", "generate.num_images=32",
                  "metric.kid_subset_size=16", "meta_algo.inner_steps=1"]  # fmt: skip
        seeds = seeds[:2]
        dataset = "digits"
    else:
        if not (OMNIGLOT / "images_background_small1.zip").exists():
            sys.exit(f"the shared Omniglot subset is not at {OMNIGLOT}")
        common = ["dataset=omniglot", f"dataset.root={OMNIGLOT}", "target.shots=5",
                  f"meta_algo.iterations={args.iterations}",
                  f"baselines.pretrain.iterations={args.iterations}"]  # fmt: skip
        dataset = "omniglot"
    # an override of the threads (`-- hardware.threads=N`, the earlier form) wins
    threads = [] if any(e.startswith("hardware.threads=") for e in args.extra) else [
        f"hardware.threads={args.threads}"]  # fmt: skip
    common += [
        "compare_baselines=false",
        "validation.every=0",
        f"finetune.steps={steps[-1]}",
        f"finetune.eval_steps=[{','.join(map(str, steps))}]",
        *threads,
        *args.extra,
    ]
    out = Path(tempfile.mkdtemp(prefix="metaaug-quality-"))
    reports: dict[str, list[dict]] = {algo: [] for algo in ALGOS}
    for seed in seeds:
        for algo in ALGOS:
            report = run(out / f"{algo}-{seed}", [f"meta_algo={algo}", f"seed={seed}", *common])
            reports[algo].append(report)
            fid = _value(report["curves"][algo][str(steps[-1])].get("fid"))
            print(f"seed {seed} {algo}: fid@{steps[-1]} = {fid:.3g}", flush=True)

    # what the runs recorded (metrics.json: hardware.threads), whichever option set it
    recorded = sorted({r["hardware"]["threads"] for rs in reports.values() for r in rs})
    data = {
        "bench": "quality",
        "quick": args.quick,
        "dataset": dataset,
        "seeds": seeds,
        "threads": recorded[0] if len(recorded) == 1 else recorded,
        "cpu": cpu_name(),
        "torch": torch.__version__,
        "iterations": 3 if args.quick else args.iterations,
        "steps": steps,
        "overrides": common,
        "targets": {
            str(s): r["target"]["classes"] for s, r in zip(seeds, reports[ALGOS[0]], strict=True)
        },
        "arms": list(ALGOS),
        "reference": REFERENCE,
        **summarize(reports, steps),
    }
    path = Path(args.json)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=1, allow_nan=False) + "\n")
    print(f"\n{render_quality(data)}\n\nwrote {path}\nrun directories: {out}")


if __name__ == "__main__":
    main()
