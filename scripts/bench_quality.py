"""Quality figure: every initialization after 10, 50, 200 and 500 fine-tune steps, over seeds.

For each seed, runs `metaaug train` once per `meta_algo` (reptile, maml, fomaml, metasgd,
scratch, pretrain; baselines off, so each arm is trained once), each measuring its quality
curve with `finetune.eval_steps`, and prints mean +- standard deviation over the seeds of the
domain FID, KID and memorization score per arm and step. Not a test: a full run on the
shared Omniglot subset takes hours on a 2-core CPU.

    python scripts/bench_quality.py                       # Omniglot subset, 3 seeds
    python scripts/bench_quality.py --quick               # digits, tiny budgets: a smoke run
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

REPO = Path(__file__).resolve().parents[1]
OMNIGLOT = REPO.parent / "shared" / "data" / "omniglot"
ALGOS = ("reptile", "maml", "fomaml", "metasgd", "pretrain", "scratch")
METRICS = ("fid", "kid", "memorization")


def run(run_dir: Path, overrides: list[str]) -> dict:
    """One `metaaug train`; returns its metrics.json."""
    cmd = [sys.executable, "-m", "metaaug.cli", "train", *overrides, f"hydra.run.dir={run_dir}"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{proc.stderr[-3000:]}")
    return json.loads((run_dir / "metrics.json").read_text())


def mean_std(values: list[float]) -> str:
    mean = sum(values) / len(values)
    if len(values) < 2:
        return f"{mean:.3g}"
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))
    return f"{mean:.3g} ± {std:.2g}"


def table(curves: dict[str, list[dict]], steps: list[int], metric: str) -> str:
    """Rows: arms; columns: fine-tune steps; cells: mean ± std over seeds."""
    lines = [
        f"| {metric} | " + " | ".join(f"@{s}" for s in steps) + " |",
        "|---" * (1 + len(steps)) + "|",
    ]
    for arm, per_seed in curves.items():
        cells = [mean_std([c[str(s)][metric] for c in per_seed]) for s in steps]
        lines.append(f"| {arm} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="digits, tiny budgets")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--iterations", type=int, default=1000, help="meta-iterations")
    parser.add_argument("extra", nargs="*", help="overrides passed to every run")
    args = parser.parse_args()

    steps = [2, 5] if args.quick else [10, 50, 200, 500]
    if args.quick:
        common = ["meta_algo.iterations=3", "baselines.pretrain.iterations=3",
                  "metric.min_steps=0", "metric.fidelity.steps_per_class=0",
                  "metric.epochs=1", "generate.num_images=32",
                  "metric.kid_subset_size=16", "meta_algo.inner_steps=1"]  # fmt: skip
        seeds = min(args.seeds, 2)
    else:
        if not (OMNIGLOT / "images_background_small1.zip").exists():
            sys.exit(f"the shared Omniglot subset is not at {OMNIGLOT}")
        common = ["dataset=omniglot", f"dataset.root={OMNIGLOT}", "target.shots=5",
                  f"meta_algo.iterations={args.iterations}",
                  f"baselines.pretrain.iterations={args.iterations}"]  # fmt: skip
        seeds = args.seeds
    common += [
        "compare_baselines=false",
        "validation.every=0",
        f"finetune.steps={steps[-1]}",
        f"finetune.eval_steps=[{','.join(map(str, steps))}]",
        *args.extra,
    ]
    out = Path(tempfile.mkdtemp(prefix="metaaug-quality-"))
    curves: dict[str, list[dict]] = {algo: [] for algo in ALGOS}
    targets = set()
    for seed in range(seeds):
        for algo in ALGOS:
            report = run(out / f"{algo}-{seed}", [f"meta_algo={algo}", f"seed={seed}", *common])
            curves[algo].append(report["curves"][algo])
            targets.update(report["target"]["classes"])
            print(f"seed {seed} {algo}: fid@{steps[-1]} = "
                  f"{report['curves'][algo][str(steps[-1])]['fid']:.3g}", flush=True)  # fmt: skip

    print(f"\n## Quality vs fine-tune steps ({seeds} seeds; targets: {', '.join(sorted(targets))})")
    print(f"overrides: {' '.join(common)}\n")
    for metric in METRICS:
        print(table(curves, steps, metric) + "\n")
    print(f"run directories: {out}")


if __name__ == "__main__":
    main()
