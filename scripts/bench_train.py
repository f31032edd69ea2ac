"""Benchmark of `metaaug train` with the defaults (digits, what `make train` runs): wall time,
meta-iterations per second and the time of each phase, and the quality of every arm, over
seeds.

After one warm-up run (so that the domain and fidelity classifiers are cached, as they are for
a user's second run), runs the real command `metaaug train seed=S hardware.threads=T` once per
seed, a subprocess as a user would, and writes the figures as JSON (`--json`, default
docs/results/train.json, which `make results` renders into docs/results.md): per timing the
mean, the 95% interval over seeds and each seed's value; per arm its quality after the run's
own fine-tune steps, with the paired differences of the meta-learned arm (recipe_summary.py).
Not a test: the figures depend on the machine and its load.

    python scripts/bench_train.py                              # seeds 0,1,2, 2 threads
    python scripts/bench_train.py --seeds 0 --threads 1 --json /tmp/train.json --extra
        meta_algo.iterations=4 finetune.steps=2 metric.epochs=1    # a smoke run (one line)
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from machine import cpu_name
from recipe_summary import interval, summarize
from render_results import train as render_train

REPO = Path(__file__).resolve().parents[1]
# metrics.json "timing" keys beside the wall time measured here
TIMING = ("meta_train_s", "meta_it_per_s", "pretrain_s", "adapt_and_measure_s")


def train(run_dir: Path, overrides: list[str]) -> tuple[dict, float]:
    """Run `metaaug train`; returns (metrics.json, wall seconds around the subprocess)."""
    cmd = [sys.executable, "-m", "metaaug.cli", "train", *overrides, f"hydra.run.dir={run_dir}"]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True,
                          env={**os.environ, "PYTHONUNBUFFERED": "1"})  # fmt: skip
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{proc.stderr[-3000:]}")
    return json.loads((run_dir / "metrics.json").read_text()), wall


def timings(reports: list[dict], walls: list[float]) -> dict[str, Any]:
    """Per timing key: mean, 95% interval over seeds and per-seed values (a key a run did not
    record, such as pretrain_s without baselines, is left out)."""
    out = {"wall_s": interval(walls)}
    for key in TIMING:
        if all(key in r["timing"] for r in reports):
            out[key] = interval([float(r["timing"][key]) for r in reports])
    return out


def summary(reports: list[dict], walls: list[float], seeds: list[int], threads: int,
            extra: list[str]) -> dict[str, Any]:  # fmt: skip
    """The JSON of the bench: the timings, and the quality at the run's own fine-tune step."""
    steps = [int(reports[0]["finetune_steps"])]
    quality = summarize(reports, seeds, steps, threads, experiment="none (the defaults)")
    del quality["bench"]  # a part of this bench's JSON, not a recipe bench of its own
    return {
        "bench": "train",
        "command": "metaaug train seed=S hardware.threads=T" + "".join(f" {o}" for o in extra),
        "dataset": reports[0]["dataset"],
        "seeds": seeds,
        "threads": threads,
        "threads_per_seed": [r["hardware"]["threads"] for r in reports],
        "cpu": cpu_name(),
        "torch": torch.__version__,
        "timing": timings(reports, walls),
        "quality": quality,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="0,1,2", help="comma-separated seeds")
    parser.add_argument("--threads", type=int, default=2, help="hardware.threads of each run")
    parser.add_argument("--json", default=str(REPO / "docs" / "results" / "train.json"))
    parser.add_argument("--extra", nargs="*", default=[],
                        help="more overrides (key=value) for every run: smoke runs only, the "
                             "figures are those of the defaults")  # fmt: skip
    # accepted and ignored: the Omniglot part moved to bench_recipe.py (over seeds)
    parser.add_argument("--skip-omniglot", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    seeds = [int(x) for x in args.seeds.split(",")]
    threads = f"hardware.threads={args.threads}"
    out = Path(tempfile.mkdtemp(prefix="metaaug-bench-"))
    print(f"runs in {out}", flush=True)

    # warm the classifier caches so that every timed run is a user's steady state (the
    # warm-up's tiny budget last: of two values of a key, Hydra takes the last)
    train(out / "warmup", [f"seed={seeds[0]}", threads, *args.extra, "meta_algo.iterations=1",
                           "finetune.steps=1", "validation.every=0"])  # fmt: skip
    reports, walls = [], []
    for seed in seeds:
        report, wall = train(out / f"seed{seed}", [f"seed={seed}", threads, *args.extra])
        print(f"  seed {seed}: {wall:.1f} s", flush=True)
        reports.append(report)
        walls.append(wall)
    data = summary(reports, walls, seeds, args.threads, args.extra)
    path = Path(args.json)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=1, allow_nan=False, default=str) + "\n")
    print(f"\n{render_train(data)}\n\nwrote {path}\nrun directories: {out}")


if __name__ == "__main__":
    main()
