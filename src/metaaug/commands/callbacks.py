"""Hydra callbacks of `metaaug train` that are not about its run directory."""

from __future__ import annotations

import sys
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf


class WarnObjectiveOnTargets(Callback):
    """Hydra callback (`hydra.callbacks.objective_on_targets`): a sweep whose objective is
    measured on the meta-test targets says so, once, before its first job. A setting chosen
    on the classes a run reports is not a result on them (docs/choices.md)."""

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        where = OmegaConf.select(config, "objective_on", default="targets")
        if where == "targets":
            objective = OmegaConf.select(config, "objective", default="?")
            print(
                f"metaaug: warning: this sweep's objective ({objective}) is measured on the "
                "meta-test targets (objective_on=targets), the classes a report is made on; "
                "to choose settings, set objective_on=validation (meta-val classes)",
                file=sys.stderr,
                flush=True,
            )
