"""What `metaaug train` runs on each rank of a distributed run (`hardware.distributed=true`):
rank 0 goes on to the Hydra app as usual; ranks > 0 compose the same config, follow rank 0's
meta-training and exit, having written nothing. The process group and the splitting of a
meta-batch are `metaaug.distributed`'s.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig
from torch import Tensor

from metaaug.commands import NO_JOB_FLAGS
from metaaug.config import keys
from metaaug.config.overrides import composed
from metaaug.distributed import check_batch, from_environment, init, leave, ready, world
from metaaug.errors import EXIT_DIVERGED, Diverged, Interrupted, UserError, exits_on_user_error


def _compose(overrides: list[str]) -> DictConfig | None:
    """The train config with these overrides, as Hydra composes it (None where it cannot: the
    Hydra app then says why on every rank)."""
    try:
        return composed("train", overrides)
    except UserError:  # a bad override: Hydra reports it the usual way
        return None


def launch(argv: list[str]) -> None:
    """Before Hydra starts `train` with these arguments: with hardware.distributed=true under
    torchrun or srun, join the process group. Rank 0 returns and runs the command as usual;
    ranks > 0 follow its meta-training and exit here."""
    rdv = from_environment()
    if rdv is None or any(a.split("=", 1)[0] in NO_JOB_FLAGS for a in argv):
        return
    flags = [a for a in argv if a.startswith("-")]
    cfg = _compose([a for a in argv if not a.startswith("-")])
    if cfg is None or not cfg.hardware.get("distributed", False):
        return
    if flags:
        raise UserError(
            f"hardware.distributed=true runs one train run across the {rdv.size} ranks, not with "
            f"{' '.join(flags)}; a sweep's jobs run one process each (hardware.distributed=false)"
        )
    from metaaug.config.training import trains  # whether the main arm meta-trains

    if trains(cfg.meta_algo):
        check_batch(cfg.meta_algo.meta_batch_size, rdv.size)  # before any work
    device = str(cfg.hardware.device)
    init(rdv, device.startswith("cuda") or (device == "auto" and torch.cuda.is_available()))
    if rdv.rank > 0:
        # rank 0 logs the run (its warnings too); an error here is this rank's own
        logging.basicConfig(
            level=logging.ERROR, format=f"[rank {rdv.rank}] %(levelname)s %(name)s: %(message)s"
        )
        try:
            exits_on_user_error(follow, keys=keys.TRAIN)(cfg)
        except RuntimeError as err:  # most often: rank 0 ended (its own output says why)
            first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            print(f"metaaug: rank {rdv.rank}: stopped: {first}", file=sys.stderr)
            sys.exit(1)
        sys.exit(0)


# Ranks > 0 keep no checkpoint: their meta-training reads `last.pt` nowhere (a path that
# cannot exist) and takes rank 0's state instead (see the module docstring).
NO_CHECKPOINTS = Path(os.devnull) / "checkpoints"


def _not_validating(fake: Tensor, target: Any) -> dict[str, float]:
    raise AssertionError("ranks > 0 do not validate")


def follow(cfg: DictConfig) -> None:
    """A rank > 0 of a distributed train run: the main arm's meta-training, in step with rank
    0, writing nothing (train.run's steps up to it, less the metrics)."""
    from metaaug.config import build, evaluator
    from metaaug.config.training import MAIN, Parts, plan, trains
    from metaaug.pipeline.initialize import run_algorithm

    if not trains(cfg.meta_algo):
        return  # rank 0 meta-trains nothing either
    ready()
    device = build.device(cfg)
    data = build.data(cfg)
    init_ = build.gan(cfg, device)
    prec = build.precision(cfg, device, init_)
    term = evaluator.class_loss(cfg, data.classes, data.split, device)  # rank 0's, cached
    parts = Parts(data, init_, device, prec, _not_validating, build.finetune(cfg, prec, term))
    try:  # the writer is never reached on a rank > 0 (meta_loop writes on rank 0 only)
        run_algorithm(plan(cfg, MAIN, parts, NO_CHECKPOINTS), init_, None)
        leave()
    except (Diverged, Interrupted) as err:  # rank 0's message says what it saved, and the fix
        what = "diverged" if isinstance(err, Diverged) else "interrupted"
        print(f"metaaug: rank {world().rank}: {what} with rank 0", file=sys.stderr)
        sys.exit(EXIT_DIVERGED if isinstance(err, Diverged) else 128 + err.signum)
