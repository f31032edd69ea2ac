"""The figures of a recipe benchmark from its runs' metrics.json: what `bench_recipe.py`
writes as JSON and `render_results.py` turns into the tables of docs/results.md.

Statistics over seeds, since a seed sets the split, the initialization and the noise: each
seed's mean over its targets is one observation, and intervals are Student-t 95% intervals over
those (n = seeds). Comparisons between arms are paired: the same targets, shots and noise for
every arm of a seed, so the per-target difference is taken first, then its mean per seed, then
the interval over seeds. A per-target interval (seeds x targets as independent) would be
narrower and wrong: the targets of a seed share one meta-learned initialization.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from machine import cpu_name

from metaaug.fewshot.stats import mean_ci

METRICS = ("fidelity", "novel_fidelity", "copies", "ceiling", "memorization", "fid", "kid")
COPY_SHOTS = "copy_shots"
# the goals of issue 21, at the goal step, for the main (meta-learned) arm
NOVEL_RATIO_GOAL = 0.5  # novel_fidelity >= 0.5 x ceiling
COPIES_GOAL = 0.10  # copies <= 0.10


def _value(x: Any) -> float:
    return math.nan if x is None else float(x)


def arm_point(target: dict, arm: str, step: str, finetune_steps: int | None = None) -> dict:
    """An arm's metrics on one target after `step` fine-tune steps; copy_shots (no fine-tune)
    is the same at every step. A run without `finetune.eval_steps` curves (the defaults) has
    its arms measured once, after its own `finetune_steps`: that step reads its results."""
    if arm == COPY_SHOTS:
        return target["results"][COPY_SHOTS]
    curve = target["curves"].get(arm) or {}
    if step not in curve and finetune_steps is not None and step == str(finetune_steps):
        return target["results"][arm]
    return curve[step]


def report_arms(report: dict) -> list[str]:
    """The adapted arms of a run, main arm first: those with a curve, or, in a run without
    curves, those of its results; copy_shots last."""
    with_curves = [a for a in report["curves"] if report["curves"][a]]
    arms = with_curves or [a for a in report["results"] if a != COPY_SHOTS]
    return [*arms, COPY_SHOTS]


def finite_mean(values: Sequence[float | None]) -> float:
    """The mean of the measured values (nan where none was)."""
    finite = [v for v in values if v is not None and not math.isnan(v)]
    return sum(finite) / len(finite) if finite else math.nan


def or_none(value: float) -> float | None:
    """JSON has no nan: an unmeasured figure is null."""
    return None if math.isnan(value) else value


def interval(per_seed: Sequence[float]) -> dict[str, Any]:
    """Mean over seeds, its 95% interval [low, high] and the per-seed values (null where a
    seed could not measure it)."""
    finite = [v for v in per_seed if not math.isnan(v)]
    seeds = [or_none(v) for v in per_seed]
    if not finite:
        return {"mean": None, "ci95": [None, None], "per_seed": seeds}
    ci = mean_ci(finite)
    if len(finite) < 2:  # one seed has no interval over seeds
        return {"mean": ci.mean, "ci95": [None, None], "per_seed": seeds}
    return {"mean": ci.mean, "ci95": [ci.low, ci.high], "per_seed": seeds}


def summarize(
    reports: Sequence[dict], seeds: Sequence[int], steps: Sequence[int], threads: int,
    experiment: str,
) -> dict[str, Any]:  # fmt: skip
    """Every arm's metrics per step (mean and interval over seeds), the paired differences
    of the main arm against each other arm, and the goals at the step that decides them."""
    first = reports[0]
    main = first["objective"]["arm"]
    arms = report_arms(first)
    goal_step = "50" if 50 in steps else str(steps[-1])

    def point(report: dict, target: dict, arm: str, step: str) -> dict:
        return arm_point(target, arm, step, report.get("finetune_steps"))

    def seed_mean(report: dict, arm: str, step: str, key: str) -> float:
        points = [point(report, t, arm, step) for t in report["targets"]]
        return finite_mean([_value(p.get(key)) for p in points])

    table = {
        arm: {str(s): {k: interval([seed_mean(r, arm, str(s), k) for r in reports])
                       for k in METRICS} for s in steps}
        for arm in arms
    }  # fmt: skip

    def paired(other: str, key: str) -> dict[str, Any]:
        per_seed = []
        for r in reports:
            diffs = [
                _value(point(r, t, main, goal_step).get(key))
                - _value(point(r, t, other, goal_step).get(key))
                for t in r["targets"]
            ]
            per_seed.append(finite_mean(diffs))
        return interval(per_seed)

    comparisons = {other: {k: paired(other, k) for k in ("novel_fidelity", "fidelity", "fid")}
                   for other in arms if other != main}  # fmt: skip
    at_goal = table[main][goal_step]
    novel, ceiling = at_goal["novel_fidelity"]["mean"], at_goal["ceiling"]["mean"]
    ratio = novel / ceiling if novel is not None and ceiling else math.nan
    copies = at_goal["copies"]["mean"]
    goals = [
        {"goal": f"novel_fidelity >= {NOVEL_RATIO_GOAL} x ceiling (the ratio)",
         "value": or_none(ratio), "met": bool(ratio >= NOVEL_RATIO_GOAL)},
        {"goal": f"copies <= {COPIES_GOAL} (the share)", "value": copies,
         "met": bool(copies is not None and copies <= COPIES_GOAL)},
    ]  # fmt: skip
    for other, diff in comparisons.items():
        low = diff["novel_fidelity"]["ci95"][0]
        goal = f"novel_fidelity above {other} (the paired 95% interval's low end > 0)"
        goals.append({"goal": goal, "value": low, "met": bool(low is not None and low > 0)})
    return {
        "bench": "recipe",
        "experiment": experiment,
        "seeds": list(seeds),
        "threads": threads,
        # what each run recorded (metrics.json: hardware.threads); a mix moves a seed's mean
        "threads_per_seed": [r["hardware"]["threads"] for r in reports],
        "cpu": cpu_name(),
        "steps": list(steps),
        "goal_step": int(goal_step),
        "main_arm": main,
        "arms": arms,
        "shots": first["target"]["shots"],
        "image_size": first["image_size"],
        "meta_iterations": first["meta_iterations"],
        "split_by": first["split"].get("by", "class"),
        "splits": {
            str(s): {"groups": r["split"].get("groups"), "targets": r["target"]["classes"]}
            for s, r in zip(seeds, reports, strict=True)
        },
        "meta_train_minutes": [r["timing"].get("meta_train_s", 0.0) / 60 for r in reports],
        "table": table,
        "paired": comparisons,
        "goals": goals,
    }
