"""Issue 22's few-shot goals, read for one design x variant of the ablation over seeds.

- plain learner, 1 shot: the variant's images alone at least as good as classic augmentation
  (mean over seeds of the paired per-episode difference >= 0);
- plain learner, each shot count: classic+variant above classic by >= 1.0 point, the 95%
  interval over seeds above 0;
- protonet, each shot count: no arm with the variant's images costs more than 0.5 point (the
  variant against none, classic+variant against classic; the larger mean cost is read).

Each is a pure function of the kept runs' per-episode accuracies, `runs[shots][seed]`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from recipe_summary import interval

Runs = Mapping[int, Mapping[int, dict]]


def episode_gain(report: dict, learner: str, arm: str, reference: str) -> float:
    """`arm` - `reference` of `learner` in one kept run: the mean over its episodes of the
    paired difference in query accuracy (a fraction)."""
    acc = report["per_episode"][learner]
    return float(np.mean(np.asarray(acc[arm]) - np.asarray(acc[reference])))


def paired(runs: Runs, shots: int, learner: str, arm: str, reference: str) -> dict[str, Any]:
    """`arm` - `reference` of `learner` at `shots`, each seed's mean over its episodes (paired),
    as a mean over seeds with its 95% interval, in points."""
    return interval([100 * episode_gain(report, learner, arm, reference)
                     for _, report in sorted(runs[shots].items())])  # fmt: skip


def goal(text: str, cell: dict[str, Any], floor: float, low_above_0: bool = False) -> dict:
    """A goal line: met when the mean is >= `floor` (and, with `low_above_0`, the interval's low
    end is above 0); never met without a mean."""
    mean, low = cell["mean"], cell["ci95"][0]
    met = mean is not None and mean >= floor
    if low_above_0:
        met = met and low is not None and low > 0
    return {"goal": text, "mean": mean, "ci95": cell["ci95"], "met": met}


def fewshot_goals(runs: Runs, variant: str) -> list[dict[str, Any]]:
    """The goals above for `variant`, in points: each with its mean, interval and verdict."""
    out = []
    if 1 in runs:
        alone = paired(runs, 1, "plain", variant, "classic")
        out.append(goal(f"plain, 1 shot: {variant} at least as good as classic (mean >= 0)",
                        alone, 0.0))  # fmt: skip
    for shots in sorted(runs):
        gain = paired(runs, shots, "plain", f"classic+{variant}", "classic")
        out.append(goal(
            f"plain, {shots} shot(s): classic+{variant} above classic by >= 1.0 point, the "
            "interval above 0", gain, 1.0, low_above_0=True))  # fmt: skip
    for shots in sorted(runs):
        costs = [paired(runs, shots, "protonet", variant, "none"),
                 paired(runs, shots, "protonet", f"classic+{variant}", "classic")]  # fmt: skip
        # the larger cost is the lower difference (a missing mean counts as the worst)
        worst = min(costs, key=lambda c: -np.inf if c["mean"] is None else c["mean"])
        out.append(goal(
            f"protonet, {shots} shot(s): {variant} or classic+{variant} costs <= 0.5 point (the "
            "larger cost)", worst, -0.5))  # fmt: skip
    return out
