"""Hydra callbacks: every command claims its run (or sweep) directory; a sweep of `metaaug
train` judged on the meta-test targets says so."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from metaaug.errors import EXIT_USAGE, UserError
from metaaug.io.rundir import claim_run_dir, claim_sweep_dir


class ClaimRunDir(Callback):
    """Hydra callback (`hydra.callbacks.claim_run_dir`): claim the run (or sweep) directory
    as Hydra resolved it (a literal directory, an interpolation or one set in a config file
    alike), before Hydra writes `.hydra/` or the log there."""

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        try:
            run_dir = Path(str(config.hydra.run.dir)).resolve()
            _refuse_inside_dataset(config, run_dir, "run directory", "hydra.run.dir")
            out = _selected(config, "generate.out")  # train's images, outside the run dir
            if isinstance(out, str) and out:
                where = Path(out).expanduser().resolve()
                _refuse_inside_dataset(config, where, "generate.out folder", "generate.out")
            claim_run_dir(run_dir)
        except UserError as err:
            _refuse(err)

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        # before the launcher creates the sweep directory and writes there: one it cannot
        # create, or one holding another sweep's jobs, is refused in one line
        storage = OmegaConf.select(config, "hydra.sweeper.storage", default=None)
        try:
            sweep_dir = Path(str(config.hydra.sweep.dir)).resolve()
            _refuse_inside_dataset(config, sweep_dir, "sweep directory", "hydra.sweep.dir")
            claim_sweep_dir(sweep_dir, storage=storage)
        except UserError as err:
            _refuse(err)


def _refuse_inside_dataset(config: DictConfig, directory: Path, what: str, key: str) -> None:
    """A run's outputs inside its own `dataset.root` become data of the next run that reads
    it (a folder of images read as a class, silently): refused before Hydra writes there."""
    root = _selected(config, "dataset.root")
    if not isinstance(root, str) or not root:
        return
    root_dir = Path(root).expanduser().resolve()
    if directory == root_dir or root_dir in directory.parents:
        raise UserError(
            f"{what} '{directory}' lies inside dataset.root '{root_dir}', where the next run "
            f"would read its outputs as a class; choose a {key} outside dataset.root"
        )


def _selected(config: DictConfig, key: str) -> Any:
    """`key`'s value, None when absent or when it does not resolve (the command says so)."""
    try:
        return OmegaConf.select(config, key, default=None)
    except OmegaConfBaseException:
        return None


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
