"""Benchmark of a recipe (default `experiment=omniglot_cpu`): every arm's novel fidelity,
fidelity, copies, ceiling, memorization, FID and KID after 10, 50 and 200 fine-tune steps,
copy_shots beside them, the mean and 95% interval over seeds, paired differences, and the
goals of issue 21 at 50 steps (novel_fidelity >= 0.5 x ceiling, above every other arm with
the paired interval above 0, copies <= 0.10).

Runs the real command once per seed (a seed sets the split, the initialization and the noise;
each run adapts every arm to `target.classes` meta-test classes drawn with the seed), writes
the figures as JSON (`--json`, default docs/results/recipe.json, which `make results` renders
into docs/results.md), prints the same tables, and writes a sample grid (shots, then each
arm's samples, for 4 targets). Not a test: hours on a 2-core CPU.

    python scripts/bench_recipe.py --seeds 0,1,2 --threads 1     # the shared Omniglot subset
    python scripts/bench_recipe.py --seeds 0 --extra meta_algo.iterations=50 --json /tmp/r.json
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from bench_runs import metaaug, take_up
from PIL import Image
from recipe_summary import summarize
from render_results import recipe as render_recipe

REPO = Path(__file__).resolve().parents[1]
OMNIGLOT = REPO.parent / "shared" / "data" / "omniglot"
STEPS = (10, 50, 200)


def train(run_dir: Path, overrides: list[str]) -> dict:
    if (run_dir / "metrics.json").is_file():  # a seed run earlier (or elsewhere, in parallel)
        print(f"  {run_dir.name}: read", flush=True)
        return json.loads((run_dir / "metrics.json").read_text())
    t0 = time.perf_counter()
    # a run an interrupted bench left there is moved aside and continued from its last.pt
    metaaug("train", *overrides, *take_up(run_dir), f"hydra.run.dir={run_dir}")
    report = json.loads((run_dir / "metrics.json").read_text())
    print(f"  {run_dir.name}: {time.perf_counter() - t0:.0f} s", flush=True)
    return report


def crop_rows(overview: Path, rows: int, out: Path, image_size: int) -> None:
    """The first `rows` targets of a run's samples/overview.png (grid padding 2)."""
    img = Image.open(overview)
    img.crop((0, 0, img.width, rows * (image_size + 2) + 2)).save(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--experiment", default="omniglot_cpu")
    parser.add_argument("--seeds", default="0,1,2", help="comma-separated seeds")
    parser.add_argument("--threads", type=int, default=1, help="hardware.threads of each run")
    parser.add_argument("--json", default=str(REPO / "docs" / "results" / "recipe.json"))
    parser.add_argument("--root", default=str(OMNIGLOT))
    parser.add_argument("--grid", default=str(REPO / "docs" / "recipe_samples.png"))
    parser.add_argument("--extra", nargs="*", default=[], help="more overrides (key=value)")
    parser.add_argument("--out", default=None,
                        help="where the runs go (default: a new temporary folder); a seed whose "
                             "run there has its metrics.json is read, not run again, and an "
                             "unfinished one is continued")  # fmt: skip
    args = parser.parse_args()
    out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="metaaug-recipe-"))
    common = [f"experiment={args.experiment}", f"dataset.root={args.root}",
              f"finetune.steps={STEPS[-1]}",
              f"finetune.eval_steps=[{','.join(map(str, STEPS))}]", *args.extra]  # fmt: skip
    print(f"runs in {out}", flush=True)
    seeds = [int(x) for x in args.seeds.split(",")]
    reports = [train(out / f"seed{s}", [*common, f"seed={s}", f"hardware.threads={args.threads}"])
               for s in seeds]  # fmt: skip
    data = summarize(reports, seeds, STEPS, args.threads, args.experiment)
    path = Path(args.json)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=1, allow_nan=False, default=str) + "\n")
    print(f"\n{render_recipe(data)}\n\nwrote {path}")
    first = reports[0]
    arms = [a for a in data["arms"] if a != "copy_shots"]  # the grid shows adapted arms

    grid = Path(args.grid)
    grid.parent.mkdir(parents=True, exist_ok=True)
    overview = out / f"seed{seeds[0]}" / "samples" / "overview.png"
    crop_rows(overview, min(4, len(first["targets"])), grid, int(first["image_size"]))
    print(
        f"\nsample grid (seed {seeds[0]}, {STEPS[-1]} steps; per row: the 5 shots, then "
        f"{', '.join(arms)}): {grid}"
    )


if __name__ == "__main__":
    main()
