"""Stage: report a run's results: printed lines, TensorBoard scalars and hparams, and
`metrics.json` (per target, and mean ± sd over targets), with the objective a sweep reads."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from torch.utils.tensorboard import SummaryWriter

from metaaug.io.atomic import write_json
from metaaug.io.synthetic import folder_name
from metaaug.io.tensorboard import log_hparams
from metaaug.metrics.names import IF_MEASURED, REPORTED
from metaaug.metrics.shot_spread import unavailable as spread_unavailable
from metaaug.pipeline.initialize import Initializations
from metaaug.pipeline.measure import Outcome, Results, across, heldout_unavailable
from metaaug.pipeline.settings import RunContext

log = logging.getLogger("metaaug.train")


def show(results: Results, main: str, writer: SummaryWriter, step: int, label: str = "") -> None:
    """One printed line per arm, and its scalars in TensorBoard: the main arm under
    `metrics/`, the others under `baseline/<arm>/` (`<label>/` first for one of many
    targets)."""
    head = f"{label}: " if label else ""
    for name, metrics in results.items():
        prefix = "metrics" if name == main else f"baseline/{name}"
        keys = _keys(metrics)
        for key in keys:
            writer.add_scalar(f"{label + '/' if label else ''}{prefix}/{key}", metrics[key], step)
        log.info("%s%s: %s", head, name, ", ".join(f"{k}={metrics[k]:.4g}" for k in keys))


def _keys(metrics: Mapping[str, float]) -> tuple[str, ...]:
    """The metrics an arm's line shows: every reported one, and those only some arms have."""
    return REPORTED + tuple(k for k in IF_MEASURED if k in metrics)


def conclude(
    ctx: RunContext, inits: Initializations, outcomes: list[Outcome], timing: dict[str, float],
    manifest: Mapping[str, Any],
) -> float:  # fmt: skip
    """The report stage: the mean ± sd over targets (printed when there are several),
    `metrics.json`, the hparams; returns the objective."""
    mean, sd = across([o.results for o in outcomes])
    many = len(outcomes) > 1
    if many:
        show(mean, inits.main, ctx.writer, ctx.finetune.steps)
        for name, metrics in mean.items():  # and the sd, one line per arm
            cells = ", ".join(f"{k}={metrics[k]:.3g}±{sd[name][k]:.2g}" for k in _keys(metrics))
            log.info("mean over %d targets, %s: %s", len(outcomes), name, cells)
    for key, value in timing.items():
        ctx.writer.add_scalar(f"time/{key}", value, 0)
    value, over = _objective(ctx, inits, mean, many)
    curve_mean = {arm: across([o.curves[arm] for o in outcomes])[0] for arm in inits.arms}
    r = ctx.record
    write_json(ctx.paths.run / "metrics.json", {
        "objective": {"name": ctx.objective.name, "value": value, "arm": inits.main,
                      "over": over},
        **{k: r[k] for k in ("seed", "config_hash", "dataset", "image_size", "channels",
                             "hardware")},
        "target": {"classes": [o.target.class_name for o in outcomes], **r["target"]},
        # the protocol behind `fidelity` and `ceiling` (docs/metrics.md)
        "fidelity": {"classifier_path": ctx.fidelity.path,
                     "unavailable": {o.target.class_name: o.unavailable for o in outcomes
                                     if o.unavailable}},
        **{k: r[k] for k in ("split", "metric", "finetune_steps", "meta_iterations")},
        # the main arm's validations: meta-iteration -> mean over the meta-val classes
        "validation": {**r["validation"],
                       "history": {str(k): v for k, v in inits.validation.items()}},
        # mean and sd over targets (sd 0 for one target); per target below
        "results": mean,
        "results_sd": sd,
        "curves": {arm: {str(k): v for k, v in m.items()} for arm, m in curve_mean.items()},
        "targets": [_target(ctx, o) for o in outcomes],
        "timing": timing,
        "synthetic": {"path": str(ctx.paths.synthetic) if outcomes else None,
                      "count": manifest["count"]},
    })  # fmt: skip
    # the run's config beside the main arm's final metrics (TensorBoard's HParams view)
    final = mean[inits.main] if outcomes else inits.validation[max(inits.validation)]
    log_hparams(ctx.writer, ctx.config, {k: final[k] for k in REPORTED})
    ctx.writer.close()
    log.info("wrote %d synthetic images of %d class(es) to %s; %s=%.4g", manifest["count"],
             len(outcomes), ctx.paths.synthetic, ctx.objective.name, value)  # fmt: skip
    return value


def _objective(
    ctx: RunContext, inits: Initializations, mean: Results, many: bool
) -> tuple[float, str]:
    """The objective's value and what it is over."""
    name = ctx.objective.name
    if ctx.objective.on == "validation":
        last = max(inits.validation)
        over = f"validation at meta-iteration {last} (mean over meta-val classes)"
        return float(inits.validation[last][name]), over
    return float(mean[inits.main][name]), "mean over targets" if many else "the target"


def _spread_unavailable(o: Outcome) -> dict[str, str]:
    """Why shot_spread is null, for an image-conditioned GAN's target that cannot have it."""
    for r in o.results.values():
        if "shot_spread" in r and (why := spread_unavailable(len(o.target.shots), r["num_fake"])):
            return {"shot_spread": why}
    return {}


def _target(ctx: RunContext, o: Outcome) -> dict[str, Any]:
    """One target's entry of metrics.json."""
    return {
        "class_name": o.target.class_name, "shots": int(o.target.shots.shape[0]),
        "heldout": int(o.target.heldout.shape[0]), "results": o.results,
        # metric -> why it is null in `results`
        "unavailable": heldout_unavailable(o.target)
        | ({"fidelity": o.unavailable, "ceiling": o.unavailable} if o.unavailable else {})
        | _spread_unavailable(o),
        "curves": {arm: {str(k): v for k, v in pts.items()} for arm, pts in o.curves.items()},
        "synthetic": str(ctx.paths.synthetic / folder_name(o.target.class_name)),
    }  # fmt: skip
