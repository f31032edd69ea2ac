"""A sweep over seeds, one row per setting: the objective's mean and 95% interval over the
seeds that ran it. A setting is chosen on that mean, never on its best single seed."""

from __future__ import annotations

import math

from metaaug.fewshot.stats import mean_ci
from metaaug.summary.sweep import Sweep


def by_setting(sweep: Sweep) -> list[tuple[dict[str, str], list[float], float, float]]:
    """(setting: the swept parameters but `seed`, the objective per seed, mean, 95% interval
    half-width) of every setting run with 2 or more seeds, best mean first; completed trials
    with a finite objective only."""
    groups: dict[tuple[tuple[str, str], ...], list[float]] = {}
    for trial in sweep.trials:
        if trial.status != "completed" or not math.isfinite(trial.value):
            continue
        key = tuple(sorted((k, str(v)) for k, v in trial.params.items() if k != "seed"))
        groups.setdefault(key, []).append(trial.value)
    rows = [(dict(key), values, ci.mean, ci.half_width)
            for key, values in groups.items() if len(values) >= 2
            for ci in [mean_ci(values)]]  # fmt: skip
    return sorted(rows, key=lambda r: r[2], reverse=sweep.direction == "maximize")


def markdown(sweep: Sweep) -> list[str]:
    """The table of `by_setting` (nothing for a sweep without repeated seeds)."""
    rows = by_setting(sweep)
    if not rows:
        return []
    keys = list(rows[0][0])
    lines = ["", f"Mean `{sweep.objective}` over seeds per setting, best first (95% interval "
             "over seeds):", "", "| " + " | ".join([*keys, "seeds", "per seed", "mean [95%]"])
             + " |", "|---" * (len(keys) + 3) + "|"]  # fmt: skip
    for setting, values, mean, half in rows:
        per_seed = ", ".join(f"{v:.3g}" for v in values)
        lines.append("| " + " | ".join([*(setting[k] for k in keys), str(len(values)), per_seed,
                                        f"{mean:.3g} [{mean - half:.3g}, {mean + half:.3g}]"])
                     + " |")  # fmt: skip
    return lines
