"""Does bf16 hold quality? `metaaug train` in fp32 and in bf16, same seeds, compared.

For the digits default and the Omniglot default (the shared subset, 32 x 32), seeds 0, 1, 2
(each seed draws its own class split and target), runs the real command with
`hardware.precision=32` and `hardware.precision=bf16` and everything else at its default,
then prints, per dataset and arm (the meta-learned initialization and both baselines), FID,
KID, IS and memorization as mean +- standard deviation over the seeds, the mean of the paired
(same seed) differences bf16 - fp32, at how many seeds bf16's figure is the higher, the paired
t-test and Wilcoxon signed-rank p-values, and a verdict per metric of the meta-learned arm:
bf16's mean within one fp32 seed-to-seed standard deviation of fp32's mean. Wall times come
with it (meaningful only on an otherwise idle machine).

    .venv/bin/python scripts/bench_precision.py                 # ~20 min on 2 cores
    .venv/bin/python scripts/bench_precision.py --datasets omniglot --seeds 0 1 2 3 4 5 6 7 8
    .venv/bin/python scripts/bench_precision.py --quick         # smoke run: tiny budget
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from scipy import stats

REPO = Path(__file__).resolve().parents[1]
METRICS = ("fid", "kid", "is", "memorization")
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


def fmt(values: list[float]) -> str:
    mean = statistics.mean(values)
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{mean:.3g} ± {sd:.2g}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--omniglot", type=Path, default=REPO.parent / "shared/data/omniglot",
                        help="root of the Omniglot data (skipped when absent)")  # fmt: skip
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--datasets", nargs="+", default=["digits", "omniglot"])
    parser.add_argument("--quick", action="store_true", help="tiny budget: a smoke run")
    parser.add_argument("--out", type=Path, help="keep the run directories here")
    args = parser.parse_args()
    datasets = {"digits": [], "omniglot": ["dataset=omniglot", f"dataset.root={args.omniglot}"]}
    if not args.omniglot.exists():
        del datasets["omniglot"]
    datasets = {k: v for k, v in datasets.items() if k in args.datasets}
    out = args.out or Path(tempfile.mkdtemp(prefix="bench-precision-"))
    for name, dataset in datasets.items():
        reports: dict[str, list[dict]] = {p: [] for p in PRECISIONS}
        for seed in args.seeds:
            for precision in PRECISIONS:
                overrides = [*dataset, f"seed={seed}", f"hardware.precision={precision}"]
                overrides += QUICK if args.quick else []
                report = run(overrides, out / name / f"seed{seed}-{precision}")
                reports[precision].append(report)
                print(f"{name} seed {seed} {precision}: {report['timing']['total_s']:.0f} s, "
                      f"fid {report['objective']['value']:.3g}", flush=True)  # fmt: skip
        arms = list(reports["32"][0]["results"])
        print(f"\n**{name}**, seeds {args.seeds}: mean ± sd over seeds; paired = mean of "
              "(bf16 - fp32) at the same seed\n")  # fmt: skip
        print("| arm | metric | fp32 | bf16 | paired bf16 - fp32 | bf16 higher | p (t) | "
              "p (Wilcoxon) |")  # fmt: skip
        print("|---|---|---|---|---|---|---|---|")
        verdicts = []
        for arm in arms:
            for metric in METRICS:
                a = [r["results"][arm][metric] for r in reports["32"]]
                b = [r["results"][arm][metric] for r in reports["bf16"]]
                diffs = [y - x for x, y in zip(a, b, strict=True)]
                higher = sum(d > 0 for d in diffs)
                p_t = p_w = float("nan")
                if len(a) > 2 and any(diffs):
                    p_t, p_w = stats.ttest_rel(b, a).pvalue, stats.wilcoxon(b, a).pvalue
                print(f"| {arm} | {metric} | {fmt(a)} | {fmt(b)} | {statistics.mean(diffs):+.3g} "
                      f"| {higher}/{len(a)} | {p_t:.2g} | {p_w:.2g} |")  # fmt: skip
                if arm == reports["32"][0]["objective"]["arm"] and len(a) > 1:
                    inside = abs(statistics.mean(b) - statistics.mean(a)) <= statistics.stdev(a)
                    verdicts.append(f"{metric} {'within' if inside else 'OUTSIDE'}")
        walls = {p: [r["timing"]["total_s"] for r in reports[p]] for p in PRECISIONS}
        print(f"| wall (s) | | {fmt(walls['32'])} | {fmt(walls['bf16'])} | | | | |")
        if verdicts:
            print(f"\nbf16 vs one fp32 seed-to-seed sd (meta-learned arm): {', '.join(verdicts)}")
        print()


if __name__ == "__main__":
    main()
