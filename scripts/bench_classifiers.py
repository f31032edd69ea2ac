"""How long the classifiers a first run trains take (issue 22 part 5: each <= 2 minutes on 2
cores on the shared Omniglot subset), and how accurate they are.

Before its first meta-iteration a run trains, then caches, the domain classifier of the
meta-train classes (FID, KID, copies, the protonet backbone) and the fidelity classifier
(meta-train classes whole, plus the reference rows of every other class). This trains both
from an empty cache, in this process with `--threads` threads, for each setting and seed:
the Omniglot default (`dataset=omniglot`, 32x32) and the recipe (`experiment=omniglot_cpu`,
28x28). Accuracy: the domain classifier's on its held-out meta-train rows, the fidelity
classifier's on the unseen rows of every val and test class (the mean ceiling). Writes JSON
(`--json`, default docs/results/classifiers.json, rendered by `make results`). Not a test: the
seconds depend on the machine and its load.

    python scripts/bench_classifiers.py                    # seed 0, 2 threads, both settings
    python scripts/bench_classifiers.py --seeds 0,2,3 --threads 1
    python scripts/bench_classifiers.py --json /tmp/c.json --extra metric.epochs=1 \
        metric.min_steps=0 metric.fidelity.steps_per_class=0      # a smoke run
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from machine import cpu_name
from recipe_summary import interval

from metaaug.config import build, evaluator
from metaaug.metrics.fidelity import reference_rows

REPO = Path(__file__).resolve().parents[1]
OMNIGLOT = REPO.parent / "shared" / "data" / "omniglot"
SETTINGS = {
    "omniglot (32x32)": ["dataset=omniglot"],
    "omniglot_cpu (28x28)": ["experiment=omniglot_cpu"],
}
GOAL_S = 120.0


def config(overrides: list[str]) -> Any:
    from hydra import compose, initialize_config_module

    with initialize_config_module("metaaug.conf", version_base="1.3"):
        return compose("train", overrides=overrides)


def measure(overrides: list[str], seed: int, cache: Path) -> dict[str, float]:
    """Both classifiers of one setting and seed trained into the empty `cache`: seconds and
    accuracy of each."""
    cfg = config([*overrides, f"dataset.root={OMNIGLOT}", f"seed={seed}",
                  f"metric.cache_dir={cache}"])  # fmt: skip
    data, device = build.data(cfg), torch.device("cpu")
    t0 = time.perf_counter()
    _, info = evaluator.domain_features(cfg, data.classes, data.split, device)
    domain_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    fidelity = evaluator.class_fidelity(cfg, data, device)
    fidelity_s = time.perf_counter() - t0
    ceilings = [fidelity.share(reference_rows(t.heldout)[1], name)
                for name, t in data.references.items()]  # fmt: skip
    return {"domain_s": domain_s, "domain_accuracy": float(info["accuracy"]),
            "domain_classes": len(data.split.train), "fidelity_s": fidelity_s,
            "fidelity_ceiling": float(np.nanmean(ceilings)),
            "fidelity_classes": len(fidelity.class_names)}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="0")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", type=Path, default=REPO / "docs" / "results" / "classifiers.json")
    parser.add_argument("--extra", nargs="*", default=[], help="more overrides: smoke runs only")
    args = parser.parse_args()
    if not (OMNIGLOT / "images_background_small1.zip").exists():
        sys.exit(f"the shared Omniglot subset is not at {OMNIGLOT}")
    torch.set_num_threads(args.threads)
    seeds = [int(s) for s in args.seeds.split(",")]
    out: dict[str, Any] = {"bench": "classifiers", "cpu": cpu_name(), "torch": torch.__version__,
                           "threads": args.threads, "seeds": seeds, "goal_s": GOAL_S,
                           "extra": args.extra, "settings": {}}  # fmt: skip
    for name, overrides in SETTINGS.items():
        runs = []
        for seed in seeds:
            with tempfile.TemporaryDirectory(prefix="metaaug-classifiers-") as cache:
                runs.append(measure([*overrides, *args.extra], seed, Path(cache)))
            print(f"{name}, seed {seed}: {runs[-1]}", flush=True)
        figures = {k: interval([r[k] for r in runs]) for k in runs[0]}
        out["settings"][name] = {"overrides": overrides, **figures}
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(out, indent=1, allow_nan=False) + "\n")
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
