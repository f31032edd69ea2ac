"""`metaaug train`: meta-train a GAN initialization, adapt it (and the baselines) to each
few-shot target, write synthetic images, measure them against held-out real images.

`run` composes the stages of `metaaug.pipeline` over one run context (`config/context.py`):
each target goes through adapt -> generate -> measure in turn, and the report aggregates them
(mean ± sd over targets).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from metaaug.config import context, keys, validate
from metaaug.config.training import arm_plans, validates
from metaaug.errors import UserError, continue_with, exits_on_user_error
from metaaug.io.rundir import run_dir_lock
from metaaug.pipeline import report
from metaaug.pipeline.initialize import initializations
from metaaug.pipeline.targets import each_target, write_images

log = logging.getLogger("metaaug.train")


def check(cfg: DictConfig) -> None:
    """Config errors that need no data (one line each, before any work)."""
    validate.check(cfg, "train")  # every value's type and range, and the data folders
    if cfg.objective_on == "validation" and not validates(cfg):
        raise UserError(
            "objective_on=validation needs the main arm to meta-train with validation; set "
            "validation.every > 0, validation.classes > 0 and meta_algo.iterations > 0, or "
            "objective_on=targets"
        )
    if str(cfg.target.get("classes")) == "0" and cfg.objective_on != "validation":
        raise UserError(
            "target.classes=0 leaves no target to measure the objective on; set "
            "objective_on=validation (meta-val classes) or name targets"
        )
    if cfg.resume and not Path(cfg.resume).is_file():
        raise UserError(
            f"resume='{cfg.resume}' is not a file; point resume at a run's checkpoints/last.pt"
        )


def run(cfg: DictConfig) -> float:
    """Meta-train, adapt every arm to each target, write and report; returns the objective."""
    check(cfg)
    t_start = time.perf_counter()
    ctx = context.prepare(cfg, Path(HydraConfig.get().runtime.output_dir))  # 1-2
    inits = initializations(ctx, arm_plans(cfg, ctx))  # 3. meta-learned, and the baselines
    outcomes, seconds = each_target(ctx, inits)  # 4-6. adapt, generate, measure
    manifest = write_images(ctx, inits, outcomes)  # 7. synthetic images, overview
    timing = {**inits.timing, "adapt_and_measure_s": seconds,
              "total_s": time.perf_counter() - t_start}  # fmt: skip
    return report.conclude(ctx, inits, outcomes, timing, manifest)  # 8. metrics.json


def resume_hint(run_dir: Path) -> str | None:
    """How a run stopped outside meta-training goes on (meta-training defers the signal and
    says it itself): from its last.pt, once there is one."""
    last = run_dir / "checkpoints" / "last.pt"
    return f"continue with resume={last} and the same overrides" if last.is_file() else None


@hydra.main(config_path="../conf", config_name="train", version_base="1.3")
@exits_on_user_error(keys=keys.TRAIN)
def main(cfg: DictConfig) -> float:
    run_dir = Path(HydraConfig.get().runtime.output_dir)
    with run_dir_lock(run_dir), continue_with(lambda: resume_hint(run_dir)):
        return run(cfg)  # (the lock: one process per run directory)
