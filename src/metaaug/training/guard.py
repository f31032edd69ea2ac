"""The divergence guard: catch a non-finite loss or weight where it appears, and either stop
(the last good checkpoint untouched) or roll back and retry with lower learning rates.

Checked once per meta-step and per fine-tune step: the step's losses (already on the host
for logging) and one reduction over all weights (a NaN or infinity in any weight makes the
sum non-finite), so the check costs one small kernel and one host sync per step. A
non-finite gradient shows up in the weights it updates, one step later at most.
"""

from __future__ import annotations

import copy
import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass

import torch
from omegaconf import DictConfig, OmegaConf
from torch import nn

from metaaug.errors import Diverged, UserError

log = logging.getLogger(__name__)

ON_DIVERGENCE = ("stop", "rollback")


@dataclass(frozen=True)
class Guard:
    """`on_divergence`: stop (exit 3) or rollback (restore the last good state, multiply the
    learning rates by `lr_factor`, at most `max_rollbacks` times)."""

    on_divergence: str = "stop"
    lr_factor: float = 0.5
    max_rollbacks: int = 3

    @classmethod
    def from_config(cls, node: DictConfig) -> Guard:
        guard = cls(str(node.on_divergence), float(node.lr_factor), int(node.max_rollbacks))
        if guard.on_divergence not in ON_DIVERGENCE:
            raise UserError(
                f"guard.on_divergence={guard.on_divergence!r} is not known; use stop or rollback"
            )
        if not 0 < guard.lr_factor < 1:
            raise UserError(f"guard.lr_factor={guard.lr_factor} must be in (0, 1), e.g. 0.5")
        if guard.max_rollbacks < 0:
            raise UserError(f"guard.max_rollbacks={guard.max_rollbacks} must be >= 0")
        return guard

    def retries(self) -> int:
        return self.max_rollbacks if self.on_divergence == "rollback" else 0

    def final(self, err: Diverged, rates: str) -> Diverged:
        """The error that ends a run after its last try, with what the user can do about the
        learning `rates` (named as the message should say them)."""
        if self.retries():
            hint = f"{self.max_rollbacks} rollbacks did not help; lower {rates}"
        else:
            hint = f"guard.on_divergence=rollback retries at lower {rates}"
        return Diverged(f"{err}; {hint}")


def non_finite_quantity(losses: Mapping[str, float], module: nn.Module) -> str | None:
    """The first non-finite quantity of a step: a loss by name, or `weights of <param>`;
    None when all are finite."""
    for name, value in losses.items():
        if not math.isfinite(value):
            return name
    params = [p.detach() for p in module.parameters()]
    if not params or bool(torch.isfinite(torch.stack([p.float().sum() for p in params]).sum())):
        return None
    for name, p in module.named_parameters():
        if not bool(torch.isfinite(p.detach()).all()):
            return f"weights of {name}"
    return "weights (their sum overflows)"


def check_step(where: str, losses: Mapping[str, float], module: nn.Module, last_good: str) -> None:
    """Raise Diverged naming `where`, the quantity and `last_good` if the step went
    non-finite."""
    bad = non_finite_quantity(losses, module)
    if bad is not None:
        raise Diverged(f"{bad} became non-finite at {where}; {last_good}")


def lowered(cfg: DictConfig, prefix: str, factor: float, keys: tuple[str, ...]) -> DictConfig:
    """A copy of the whole config `cfg` with the learning rates at `prefix`.`keys` (those
    present) multiplied by `factor`; interpolations of them (the algorithm's) follow.
    Returns the copy (its node at `prefix` is what a retry builds from)."""
    out = copy.deepcopy(cfg)
    for key in keys:
        path = f"{prefix}.{key}" if prefix else key
        value = OmegaConf.select(out, path)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            OmegaConf.update(out, path, float(value) * factor)
    return out


# the learning rates of a meta_algo node that a rollback lowers
META_LRS = ("meta_lr", "inner_optimizer.lr", "optimizer.lr")
