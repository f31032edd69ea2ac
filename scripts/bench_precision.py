"""Does bf16 hold quality? `metaaug train` in fp32 and in bf16, same seeds, compared.

For the digits default and the Omniglot default (the shared subset, 32 x 32), seeds 0, 1, 2
(each seed draws its own class split and target), runs the real command with
`hardware.precision=32` and `hardware.precision=bf16` and everything else at its default,
then, per dataset and arm (the meta-learned initialization, both baselines and copy_shots),
novel_fidelity, fidelity, copies, memorization, FID, KID and IS (those metrics.json has) as
the mean and 95% interval over seeds in each precision, the paired (same seed) difference
bf16 - fp32 with its 95% interval over seeds, at how many seeds bf16's figure is the higher,
and the paired t-test and Wilcoxon signed-rank p-values; the verdict per metric of the
meta-learned arm: whether the paired interval holds 0. Wall times come with it (meaningful
only on an otherwise idle machine).

Writes the figures as JSON (`--json`, default docs/results/precision.json, which
`make results` renders into docs/results.md) and prints the same tables.

    .venv/bin/python scripts/bench_precision.py                 # ~20 min on 2 cores
    .venv/bin/python scripts/bench_precision.py --datasets omniglot --seeds 0,1,2,3,4,5,6,7,8
    .venv/bin/python scripts/bench_precision.py --quick --seeds 0 --threads 1 --json /tmp/p.json
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import torch
from machine import cpu_name
from recipe_summary import interval
from render_results import precision as render_precision
from scipy import stats

REPO = Path(__file__).resolve().parents[1]
# the figures of each arm, where metrics.json has them (copies and novel_fidelity need the
# fidelity classifier and enough held-out images)
METRICS = ("novel_fidelity", "fidelity", "copies", "memorization", "fid", "kid", "is")
PRECISIONS = ("32", "bf16")
QUICK = [
    "meta_algo.iterations=4", "finetune.steps=3", "validation.every=0", "generate.num_images=24",
    "metric.epochs=1", "metric.min_steps=0", "metric.kid_subset_size=10", "metric.kid_subsets=5",
    "metric.fidelity.steps_per_class=0",
    "baselines.pretrain.iterations=2",
]  # fmt: skip


def run(overrides: list[str], out: Path) -> dict:
    cmd = [sys.executable, "-m", "metaaug.cli", "train", *overrides, f"hydra.run.dir={out}"]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"failed: {' '.join(cmd)}\n{proc.stderr[-2000:]}")
    return json.loads((out / "metrics.json").read_text())


def seed_list(values: list[str]) -> list[int]:
    """Seeds as `0,1,2` (as the Makefile passes them) or `0 1 2` (the earlier form)."""
    return [int(x) for value in values for x in value.split(",") if x]


def _value(x: Any) -> float:
    return math.nan if x is None else float(x)


def compare(fp32: list[float], bf16: list[float]) -> dict[str, Any]:
    """One arm's metric in both precisions over the same seeds, paired per seed."""
    pairs = [(a, b) for a, b in zip(fp32, bf16, strict=True)
             if not (math.isnan(a) or math.isnan(b))]  # fmt: skip
    diffs = [b - a for a, b in pairs]
    p_t = p_w = None
    if len(pairs) > 2 and any(diffs):  # the tests need 3 pairs and a difference
        a, b = [p[0] for p in pairs], [p[1] for p in pairs]
        p_t, p_w = float(stats.ttest_rel(b, a).pvalue), float(stats.wilcoxon(b, a).pvalue)
    diff_per_seed = [b - a for a, b in zip(fp32, bf16, strict=True)]
    return {
        "fp32": interval(fp32),
        "bf16": interval(bf16),
        "paired": interval(diff_per_seed),
        "bf16_higher": sum(d > 0 for d in diffs),
        "pairs": len(pairs),
        "p_t": None if p_t is None or math.isnan(p_t) else p_t,
        "p_wilcoxon": None if p_w is None or math.isnan(p_w) else p_w,
    }


def dataset_summary(reports: dict[str, list[dict]], seeds: list[int]) -> dict[str, Any]:
    """Per arm and metric, fp32 against bf16 over the seeds; the meta-learned arm's verdicts."""
    first = reports["32"][0]
    arms = list(first["results"])
    measured = {m for r in reports["32"] for a in arms for m, v in r["results"][a].items()
                if v is not None}  # fmt: skip
    metrics = [m for m in METRICS if m in measured]
    table = {
        arm: {m: compare([_value(r["results"][arm].get(m)) for r in reports["32"]],
                         [_value(r["results"][arm].get(m)) for r in reports["bf16"]])
              for m in metrics}
        for arm in arms
    }  # fmt: skip
    main = first["objective"]["arm"]
    verdicts = []
    for m in metrics:
        low, high = table[main][m]["paired"]["ci95"]
        holds = None if low is None else bool(low <= 0 <= high)  # None: no interval (1 seed)
        verdicts.append({"metric": m, "holds_zero": holds})
    return {
        "seeds": seeds,
        "threads_per_run": {p: [r["hardware"]["threads"] for r in reports[p]] for p in PRECISIONS},
        "main_arm": main,
        "arms": arms,
        "metrics": metrics,
        "table": table,
        "wall_s": {
            p: interval([float(r["timing"]["total_s"]) for r in reports[p]]) for p in PRECISIONS
        },
        "verdicts": verdicts,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--omniglot", type=Path, default=REPO.parent / "shared/data/omniglot",
                        help="root of the Omniglot data (skipped when absent)")  # fmt: skip
    parser.add_argument("--seeds", nargs="+", default=["0,1,2"],
                        help="seeds: 0,1,2 or 0 1 2")  # fmt: skip
    parser.add_argument("--threads", type=int, default=2, help="hardware.threads of each run")
    parser.add_argument("--datasets", nargs="+", default=["digits", "omniglot"])
    parser.add_argument("--quick", action="store_true", help="tiny budget: a smoke run")
    parser.add_argument("--out", type=Path, help="keep the run directories here")
    parser.add_argument("--json", default=str(REPO / "docs" / "results" / "precision.json"))
    args = parser.parse_args()
    seeds = seed_list(args.seeds)
    datasets = {"digits": [], "omniglot": ["dataset=omniglot", f"dataset.root={args.omniglot}"]}
    if not args.omniglot.exists():
        del datasets["omniglot"]
    datasets = {k: v for k, v in datasets.items() if k in args.datasets}
    out = args.out or Path(tempfile.mkdtemp(prefix="bench-precision-"))
    data: dict[str, Any] = {"bench": "precision", "quick": args.quick, "seeds": seeds,
                            "threads": args.threads, "cpu": cpu_name(),
                            "torch": torch.__version__, "datasets": {}}  # fmt: skip
    for name, dataset in datasets.items():
        reports: dict[str, list[dict]] = {p: [] for p in PRECISIONS}
        for seed in seeds:
            for precision in PRECISIONS:
                overrides = [*dataset, f"seed={seed}", f"hardware.precision={precision}",
                             f"hardware.threads={args.threads}"]  # fmt: skip
                overrides += QUICK if args.quick else []
                report = run(overrides, out / name / f"seed{seed}-{precision}")
                reports[precision].append(report)
                print(f"{name} seed {seed} {precision}: {report['timing']['total_s']:.0f} s, "
                      f"fid {report['objective']['value']:.3g}", flush=True)  # fmt: skip
        data["datasets"][name] = dataset_summary(reports, seeds)
    path = Path(args.json)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=1, allow_nan=False) + "\n")
    print(f"\n{render_precision(data)}\n\nwrote {path}\nrun directories: {out}")


if __name__ == "__main__":
    main()
