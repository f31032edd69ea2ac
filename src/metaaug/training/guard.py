"""The divergence guard: catch a non-finite loss or weight where it appears, and either stop
(the last good checkpoint untouched) or roll back and retry with lower learning rates.

Checked once per meta-step and per fine-tune step: the step's losses (already on the host
for logging) and one reduction over all weights (a NaN or infinity in any weight makes the
sum non-finite), so the check costs one small kernel and one host sync per step. A
non-finite gradient shows up in the weights it updates, one step later at most.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TypeVar

import torch
from torch import nn

from metaaug.errors import Diverged

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True)
class Guard:
    """`on_divergence`: stop (exit 3) or rollback (restore the last good state, multiply the
    learning rates by `lr_factor`, at most `max_rollbacks` times). The typed config
    (`config/schema.py`) checks the values before any work."""

    on_divergence: str = "stop"
    lr_factor: float = 0.5
    max_rollbacks: int = 3

    def run(
        self, attempt: Callable[[], T], rates: str, rollback: Callable[[Diverged, int], None]
    ) -> T:
        """`attempt()` until it returns without diverging: after the n-th divergence (n from
        0), `rollback(err, n)` prepares the next try (lower rates, an earlier state). After the
        last try, or at once with `on_divergence=stop`, the error stands with `final`'s hint
        about the learning `rates`. The one retry loop of the fine-tune and meta-training."""
        for n in range(self.retries() + 1):
            try:
                return attempt()
            except Diverged as err:
                if n == self.retries():
                    raise self.final(err, rates) from None
                rollback(err, n)
        raise AssertionError("unreachable")

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
