"""Hydra callbacks: every command claims its run (or sweep) directory; a sweep of `metaaug
train` judged on the meta-test targets says so."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from metaaug.errors import EXIT_USAGE, UserError
from metaaug.io.rundir import claim_run_dir, claim_sweep_dir


class ClaimRunDir(Callback):
    """Hydra callback (`hydra.callbacks.claim_run_dir`): claim the run (or sweep) directory
    as Hydra resolved it (a literal directory, an interpolation or one set in a config file
    alike), before Hydra writes `.hydra/` or the log there."""

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        try:
            claim_run_dir(Path(str(config.hydra.run.dir)).resolve())
        except UserError as err:
            _refuse(err)

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        # before the launcher creates the sweep directory and writes there: one it cannot
        # create, or one holding another sweep's jobs, is refused in one line
        storage = OmegaConf.select(config, "hydra.sweeper.storage", default=None)
        try:
            claim_sweep_dir(Path(str(config.hydra.sweep.dir)).resolve(), storage=storage)
        except UserError as err:
            _refuse(err)


def _refuse(err: UserError) -> None:
    print(f"metaaug: error: {err}", file=sys.stderr)
    sys.exit(EXIT_USAGE)


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
