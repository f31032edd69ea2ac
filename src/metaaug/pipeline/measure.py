"""Stage: measure every arm's images of one target (a target's `Outcome`), and aggregate over
targets."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from torch import Tensor

from metaaug.data.target import Target
from metaaug.pipeline.adapt import Curve
from metaaug.pipeline.generate import copies
from metaaug.training.meta_loop import Evaluate

COPY_SHOTS = "copy_shots"  # the reference arm: the shots copied in turn

Results = dict[str, dict[str, float]]  # arm -> metric -> value


@dataclass
class Outcome:
    """One target's results: every arm's metrics and curves, and its main-arm images."""

    target: Target
    results: Results
    curves: dict[str, Curve]
    images: Tensor  # the main arm's synthetic images
    shown: dict[str, Tensor]  # the first samples of every arm (samples/overview.png)
    unavailable: str | None  # why fidelity cannot be measured, if it cannot


def measure_arms(
    fakes: Mapping[str, Tensor],
    curves: Mapping[str, Curve],
    target: Target,
    evaluate: Evaluate,
    steps: int,
) -> Results:
    """Every arm's metrics on `target`, and copy-the-shots' beside them. A curve point at the
    last fine-tune step measured these same images: it is reused, not measured again."""
    results = {
        name: curves.get(name, {}).get(steps) or evaluate(fake, target)
        for name, fake in fakes.items()
    }
    n = next(iter(fakes.values())).shape[0] if fakes else 0
    results[COPY_SHOTS] = evaluate(copies(target, n), target)
    return results


def heldout_unavailable(target: Target) -> dict[str, str]:
    """metric -> why it cannot be measured on `target`: FID, KID and memorization compare
    the images with at least 2 held-out real images of the class."""
    n = int(target.heldout.shape[0])
    if n >= 2:
        return {}
    reason = (
        f"{target.class_name} has {n} held-out image(s) beyond its {target.shots.shape[0]} "
        "shots; FID, KID and memorization need at least 2: add images to the class or lower "
        "target.shots"
    )
    return dict.fromkeys(("fid", "kid", "memorization"), reason)


def _mean_sd(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (ddof 1; 0 for one value) of the finite values:
    a target whose metric is unavailable (nan) is left out; none left gives nan."""
    finite = [v for v in values if not math.isnan(v)]
    if not finite:
        return math.nan, math.nan
    mean = sum(finite) / len(finite)
    if len(finite) == 1:
        return mean, 0.0
    var = sum((v - mean) ** 2 for v in finite) / (len(finite) - 1)
    return mean, math.sqrt(var)


def across(per_target: Sequence[Mapping[str, Mapping[str, float]]]) -> tuple[Results, Results]:
    """Mean and sd over targets of every `arm -> metric` (or `step -> metric`) table; keys
    missing in some targets are aggregated over the targets that have them."""
    mean: Results = {}
    sd: Results = {}
    # rows and keys in the order they first appear (the main arm first, as measured)
    rows = dict.fromkeys(row for table in per_target for row in table)
    for row in rows:
        keys = dict.fromkeys(k for table in per_target for k in table.get(row, {}))
        mean[row], sd[row] = {}, {}
        for key in keys:
            m, s = _mean_sd([float(t[row][key]) for t in per_target if key in t.get(row, {})])
            mean[row][key], sd[row][key] = m, s
    return mean, sd
