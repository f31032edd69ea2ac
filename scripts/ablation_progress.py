"""The runs of issue 22's ablation kept so far, one row per run: what `bench_ablation.py`
writes as docs/results/ablation_<stage>_runs.json after each run it keeps, and
`render_results.py` shows while the stage's table (every design over every seed) is not yet
complete.

A kept run is one seed: its intervals are over that seed's episodes (one GAN, one backbone),
not over seeds, so a row says how a design did on one split, never whether it helps. Where a
design and shot count of the test stage has `MIN_SEEDS` kept seeds or more, issue 22's
few-shot goals are also read over those seeds (`over_seeds`): the choice val made is fixed,
so that reading is a result at that shot count before the stage's last run is in.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from ablation_goals import fewshot_goals
from recipe_summary import finite_mean, or_none

from metaaug.fewshot.stats import mean_ci

VARIANTS = ("gan", "gan_f", "gan_w", "gan_fw")
MIN_SEEDS = 3  # an interval over seeds is read from three seeds or more


def _paired(arm: list[float], reference: list[float]) -> dict[str, float]:
    """`arm - reference` per episode: the mean and its 95% half-width over episodes."""
    ci = mean_ci(np.asarray(arm, dtype=np.float64) - np.asarray(reference, dtype=np.float64))
    return {"mean": ci.mean, "half_width": ci.half_width}


def run_row(report: dict[str, Any]) -> dict[str, Any]:
    """One kept run's figures per variant of the gan arm: plain and protonet against none,
    plain classic+variant against classic, and the share of images a filter kept."""
    plain, proto = report["per_episode"]["plain"], report["per_episode"]["protonet"]
    rows = {}
    for v in (v for v in VARIANTS if v in plain):
        kept = report["kept"].get(v)
        rows[v] = {
            "plain_vs_none": _paired(plain[v], plain["none"]),
            "plain_classic_plus_vs_classic": _paired(plain[f"classic+{v}"], plain["classic"]),
            "protonet_vs_none": _paired(proto[v], proto["none"]),
            "kept": None if kept is None else float(np.nanmean(np.asarray(kept, dtype=float))),
        }
    return rows


def progress(store: Path, stage: str) -> dict[str, Any]:
    """Every run of `stage` kept under `store` (`seed<S>/<design>_<stage>_<K>shot.json`)."""
    runs = []
    reports: dict[tuple[str, int], dict[int, dict]] = {}
    for path in sorted(store.glob(f"seed*/*_{stage}_*shot.json")):
        report = json.loads(path.read_text())
        design, shots = path.stem.rsplit(f"_{stage}_", 1)
        seed, k = int(path.parent.name.removeprefix("seed")), int(shots.removesuffix("shot"))
        reports.setdefault((design, k), {})[seed] = report
        runs.append({
            "seed": seed, "design": design, "shots": k, "episodes": report["episodes"],
            "cpu": report["cpu"], "threads": report["threads"], "workers": report["workers"],
            "minutes": round(report["seconds"] / 60, 1), "variants": run_row(report),
            # episodes scored before the kept run began: its minutes are the rest's
            "taken_up": report.get("taken_up", 0),
        })  # fmt: skip
    runs.sort(key=lambda r: (r["design"], r["shots"], r["seed"]))
    # the images do not depend on the stage: shown once, beside the val stage's runs
    shown = images(store) if stage == "val" else []
    # val's own table reads every design over every seed; test's waits for its last run
    goals = over_seeds(reports) if stage == "test" else []
    return {"bench": "ablation_runs", "stage": stage, "runs": runs, "images": shown,
            "over_seeds": goals}  # fmt: skip


def over_seeds(reports: dict[tuple[str, int], dict[int, dict]]) -> list[dict[str, Any]]:
    """Per design x shots kept on `MIN_SEEDS` seeds or more (`reports[design, shots][seed]`)
    and per variant of its gan arm: issue 22's few-shot goals over those seeds."""
    rows = []
    for (design, shots), by_seed in sorted(reports.items()):
        if len(by_seed) < MIN_SEEDS:
            continue
        plain = next(iter(by_seed.values()))["per_episode"]["plain"]
        for v in (v for v in VARIANTS if v in plain):
            rows.append({"design": design, "shots": shots, "seeds": sorted(by_seed),
                         "variant": v, "goals": fewshot_goals({shots: by_seed}, v)})  # fmt: skip
    return rows


def images(store: Path) -> list[dict[str, Any]]:
    """Each kept measure of a design's images (`seed<S>/<design>_targets.json`): per arm
    (the design's `gan`, and `copy_shots`) every metric's mean over the seed's targets."""
    rows = []
    for path in sorted(store.glob("seed*/*_targets.json")):
        kept = json.loads(path.read_text())
        means = {arm: {k: or_none(finite_mean(v)) for k, v in by_metric.items()}
                 for arm, by_metric in kept["arms"].items()}  # fmt: skip
        rows.append({"seed": int(path.parent.name.removeprefix("seed")),
                     "design": path.stem.removesuffix("_targets"), "cpu": kept["cpu"],
                     "targets": len(kept["targets"]), "means": means})  # fmt: skip
    rows.sort(key=lambda r: (r["design"], r["seed"]))
    return rows
