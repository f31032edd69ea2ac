"""Benchmark of a recipe (default `experiment=omniglot_cpu`): every arm's class fidelity, its
ceiling, FID, KID and memorization after 10, 50 and 200 fine-tune steps, mean ± sd over
targets and seeds, and whether the recipe's goals are met (at 50 steps):

- meta-learned fidelity >= 0.6 x ceiling (mean over targets),
- above scratch's and pretrain's by more than the seed-to-seed spread,
- memorization >= 0.6, and FID and KID below both baselines'.

Runs the real command once per seed (each adapts every arm to `target.classes` meta-test
classes), prints markdown for the README and writes a sample grid (shots, then each arm's
samples, for 4 targets) to docs/. Not a test: hours on a 2-core CPU.

    python scripts/bench_recipe.py                       # 3 seeds, the shared Omniglot subset
    python scripts/bench_recipe.py --seeds 1 --extra meta_algo.iterations=50   # a smoke run
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image

REPO = Path(__file__).resolve().parents[1]
OMNIGLOT = REPO.parent / "shared" / "data" / "omniglot"
STEPS = (10, 50, 200)
GOAL_STEP = "50"
COLUMNS = ("fidelity", "ceiling", "fid", "kid", "memorization")


def train(run_dir: Path, overrides: list[str]) -> dict:
    if (run_dir / "metrics.json").is_file():  # a seed run earlier (or elsewhere, in parallel)
        print(f"  {run_dir.name}: read", flush=True)
        return json.loads((run_dir / "metrics.json").read_text())
    t0 = time.perf_counter()
    cmd = [sys.executable, "-m", "metaaug.cli", "train", *overrides, f"hydra.run.dir={run_dir}"]
    proc = subprocess.run(cmd, capture_output=True, text=True,
                          env={**os.environ, "PYTHONUNBUFFERED": "1"})  # fmt: skip
    if proc.returncode != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{proc.stderr[-3000:]}")
    report = json.loads((run_dir / "metrics.json").read_text())
    print(f"  {run_dir.name}: {time.perf_counter() - t0:.0f} s", flush=True)
    return report


def _mean_sd(values: list[float | None]) -> tuple[float, float]:
    finite = [v for v in values if v is not None and not math.isnan(v)]  # null: unavailable
    if not finite:
        return math.nan, math.nan
    return statistics.fmean(finite), statistics.stdev(finite) if len(finite) > 1 else 0.0


def point(target: dict, arm: str, step: str) -> dict:
    """An arm's metrics on one target after `step` fine-tune steps (the ceiling is the same
    for every arm)."""
    return target["curves"][arm][step]


def crop_rows(overview: Path, rows: int, out: Path, image_size: int) -> None:
    """The first `rows` targets of a run's samples/overview.png (grid padding 2)."""
    img = Image.open(overview)
    img.crop((0, 0, img.width, rows * (image_size + 2) + 2)).save(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--experiment", default="omniglot_cpu")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--root", default=str(OMNIGLOT))
    parser.add_argument("--grid", default=str(REPO / "docs" / "recipe_samples.png"))
    parser.add_argument("--extra", nargs="*", default=[], help="more overrides (key=value)")
    parser.add_argument("--out", default=None,
                        help="where the runs go (default: a new temporary folder); a seed whose "
                             "run there has its metrics.json is read, not run again")  # fmt: skip
    args = parser.parse_args()
    out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="metaaug-recipe-"))
    common = [f"experiment={args.experiment}", f"dataset.root={args.root}",
              f"finetune.steps={STEPS[-1]}",
              f"finetune.eval_steps=[{','.join(map(str, STEPS))}]", *args.extra]  # fmt: skip
    print(f"runs in {out}", flush=True)
    reports = [train(out / f"seed{s}", [*common, f"seed={s}"]) for s in range(args.seeds)]

    arms = [a for a in reports[0]["curves"] if reports[0]["curves"][a]]
    # per arm and step: every target of every seed, and each seed's mean over its targets
    cells: dict[tuple[str, str], dict[str, tuple[float, float]]] = {}
    seed_means: dict[tuple[str, str, str], list[float]] = {}
    for arm in arms:
        for step in map(str, STEPS):
            values = {k: [] for k in COLUMNS}
            for report in reports:
                per_seed = {k: [] for k in COLUMNS}
                for target in report["targets"]:
                    metrics = point(target, arm, step)
                    for k in COLUMNS:
                        value = math.nan if metrics[k] is None else float(metrics[k])
                        values[k].append(value)
                        per_seed[k].append(value)
                for k in COLUMNS:
                    seed_means.setdefault((arm, step, k), []).append(_mean_sd(per_seed[k])[0])
            cells[arm, step] = {k: _mean_sd(v) for k, v in values.items()}

    n_targets = sum(len(r["targets"]) for r in reports)
    first = reports[0]
    print(f"\n## Recipe `experiment={args.experiment}` ({args.seeds} seeds, {n_targets} targets "
          f"in all, {first['target']['shots']} shots, {first['meta_iterations']} "
          f"meta-iterations, {first['image_size']}x{first['image_size']})\n")  # fmt: skip
    walls = [r["timing"].get("meta_train_s", 0.0) for r in reports]
    print(f"Meta-training wall time per seed: {', '.join(f'{w / 60:.1f}' for w in walls)} min.\n")
    header = [f"{k} @{s}" for k in ("fidelity", "FID", "memo") for s in STEPS]
    print("| arm | ceiling | " + " | ".join(header) + " |")
    print("|---" * (2 + len(header)) + "|")
    for arm in arms:
        ceiling = cells[arm, str(STEPS[0])]["ceiling"]
        fmt = {"fidelity": "{:.2f}", "fid": "{:.0f}", "memorization": "{:.2f}"}
        row = [" ± ".join(fmt[k].format(v) for v in cells[arm, str(s)][k])
               for k in ("fidelity", "fid", "memorization") for s in STEPS]  # fmt: skip
        print(f"| {arm} | {ceiling[0]:.2f} ± {ceiling[1]:.2f} | " + " | ".join(row) + " |")

    main_arm = first["objective"]["arm"]
    baselines = [a for a in arms if a != main_arm]
    fid = cells[main_arm, GOAL_STEP]
    goals = []
    ratio = fid["fidelity"][0] / fid["ceiling"][0] if fid["ceiling"][0] else math.nan
    goals.append((f"fidelity >= 0.6 x ceiling: {fid['fidelity'][0]:.2f} vs "
                  f"0.6 x {fid['ceiling'][0]:.2f} = {0.6 * fid['ceiling'][0]:.2f} "
                  f"(ratio {ratio:.2f})", ratio >= 0.6))  # fmt: skip
    for base in baselines:
        ours = seed_means[main_arm, GOAL_STEP, "fidelity"]
        theirs = seed_means[base, GOAL_STEP, "fidelity"]
        gap = statistics.fmean(ours) - statistics.fmean(theirs)
        spread = max(_mean_sd(ours)[1], _mean_sd(theirs)[1])
        goals.append((f"fidelity above {base}'s by more than the seed spread: "
                      f"{gap:+.3f} vs {spread:.3f}", gap > spread))  # fmt: skip
        for k in ("fid", "kid"):
            a, b = fid[k][0], cells[base, GOAL_STEP][k][0]
            goals.append((f"{k.upper()} below {base}'s: {a:.3g} vs {b:.3g}", a < b))
    memo = fid["memorization"][0]
    goals.append((f"memorization >= 0.6: {memo:.2f}", memo >= 0.6))
    print(f"\nGoals at {GOAL_STEP} steps ({main_arm}):\n")
    for text, ok in goals:
        print(f"- [{'x' if ok else ' '}] {text}")

    grid = Path(args.grid)
    grid.parent.mkdir(parents=True, exist_ok=True)
    crop_rows(out / "seed0" / "samples" / "overview.png", min(4, len(first["targets"])), grid,
              int(first["image_size"]))  # fmt: skip
    print(
        f"\nsample grid (seed 0, {STEPS[-1]} steps; per row: the 5 shots, then "
        f"{', '.join(arms)}): {grid}"
    )


if __name__ == "__main__":
    main()
