"""Stage: report a run's results: printed lines, TensorBoard scalars and hparams, and
`metrics.json` (per target, and mean ± sd over targets)."""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from torch.utils.tensorboard import SummaryWriter

from metaaug.io.atomic import write_text
from metaaug.io.tensorboard import log_hparams
from metaaug.metrics.names import REPORTED
from metaaug.pipeline.evaluate import Results

log = logging.getLogger("metaaug.train")


def show(results: Results, main: str, writer: SummaryWriter, step: int, label: str = "") -> None:
    """One printed line per arm, and its scalars in TensorBoard: the main arm under
    `metrics/`, the others under `baseline/<arm>/` (`<label>/` first for one of many
    targets)."""
    head = f"{label}: " if label else ""
    for name, metrics in results.items():
        prefix = "metrics" if name == main else f"baseline/{name}"
        for key in REPORTED:
            writer.add_scalar(f"{label + '/' if label else ''}{prefix}/{key}", metrics[key], step)
        log.info("%s%s: %s", head, name, ", ".join(f"{k}={metrics[k]:.4g}" for k in REPORTED))


def show_spread(mean: Results, sd: Results, n: int) -> None:
    """The mean ± sd over `n` targets, one line per arm."""
    for name, metrics in mean.items():
        cells = ", ".join(f"{k}={metrics[k]:.3g}±{sd[name][k]:.2g}" for k in REPORTED)
        log.info("mean over %d targets, %s: %s", n, name, cells)


def _json_safe(value: Any) -> Any:
    """NaN and infinities (a metric that could not be measured) as null: strict JSON, and
    the reason sits beside it under `unavailable`."""
    if isinstance(value, Mapping):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, (int, float)):  # numpy, torch scalars
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def write(path: Path, report: Mapping[str, Any]) -> None:
    """`report` as strict JSON (non-finite numbers as null), written atomically."""
    text = json.dumps(_json_safe(report), indent=2, default=float, allow_nan=False)
    write_text(path, text + "\n")


def hparams(writer: SummaryWriter, config: dict[str, Any], metrics: Mapping[str, float]) -> None:
    """The run's config beside the main arm's final metrics (TensorBoard's HParams view)."""
    log_hparams(writer, config, {k: metrics[k] for k in REPORTED})
