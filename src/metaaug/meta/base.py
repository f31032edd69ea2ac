"""The one small interface every meta-algorithm implements."""

from __future__ import annotations

from typing import Any, Protocol

import torch

from metaaug.data.tasks import Task
from metaaug.models.gan import GAN


class MetaAlgorithm(Protocol):
    """Takes the initialization and a meta-batch of tasks; moves the initialization.

    `meta_step` updates `init` in place and returns scalar logs (logged under `meta/`).
    `state_dict`/`load_state_dict` carry the outer optimizer's state for resuming.
    """

    name: str

    def meta_step(self, init: GAN, tasks: Task, rng: torch.Generator) -> dict[str, float]: ...

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...
