"""Meta-SGD for GANs: MAML whose inner learning rates, one per weight, are meta-learned too.

Description:
    The inner update is phi = theta - alpha * grad, with alpha a tensor shaped like theta,
    initialized to the inner learning rate and updated by the outer optimizer along the
    meta-gradient dL/dalpha (second order through the inner loop). Generator and
    discriminator each have their own alpha, following their own DAWSON meta-loss (see
    `metaaug.meta.maml`).

Arguments:
    As `MAML`; the inner optimizer must be SGD (alpha replaces its learning rate). With
    `first_order`, alpha's meta-gradient goes through the (detached) inner gradients only.

References:
    Li, Zhou, Chen & Li (2017), "Meta-SGD: Learning to Learn Quickly for Few-Shot Learning",
    Equations 1-3.

Example:
    >>> algo = MetaSGD(5, OptimizerSpec("sgd", 1e-2), meta_lr=1e-4, adversarial=Adversarial())
    >>> logs = algo.meta_step(gan, sampler.sample(4), rng)
    >>> algo.learning_rates()  # (alpha_G, alpha_D), dicts keyed like named_parameters()
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from metaaug.data.tasks import Task
from metaaug.errors import BadValue
from metaaug.meta.functional import Params
from metaaug.meta.maml import MAML
from metaaug.meta.settings import OptimizerSpec
from metaaug.models.gan import GAN


class MetaSGD(MAML):
    name = "metasgd"

    def __init__(
        self, inner_steps: int, inner_optimizer: OptimizerSpec, *args: Any, **kwargs: Any
    ) -> None:
        """MAML's arguments; the inner optimizer must be SGD."""
        if inner_optimizer.name != "sgd":
            raise BadValue(
                "Meta-SGD learns the inner SGD learning rates; set {inner_optimizer}.name=sgd"
            )
        super().__init__(inner_steps, inner_optimizer, *args, **kwargs)
        self.name = "metasgd"
        self._alpha: tuple[Params, Params] | None = None  # keyed like named_parameters()

    def meta_step(self, init: GAN, tasks: Task, rng: torch.Generator) -> dict[str, float]:
        if self._alpha is None:  # every weight's rate starts at the inner learning rate
            lr = self.inner.spec.lr
            self._alpha = tuple(
                {k: nn.Parameter(torch.full_like(v.detach(), lr)) for k, v in m.named_parameters()}
                for m in (init.generator, init.discriminator)
            )  # type: ignore[assignment]
        logs = super().meta_step(init, tasks, rng)
        for net, alpha in zip("GD", self._alpha, strict=True):
            logs[f"lr_{net}_mean"] = torch.cat([v.flatten() for v in alpha.values()]).mean().item()
        return logs

    def learning_rates(self) -> tuple[Params, Params] | None:
        return self._alpha

    def extra_parameters(self) -> list[Tensor]:
        return [] if self._alpha is None else [*self._alpha[0].values(), *self._alpha[1].values()]

    def state_dict(self) -> dict[str, Any]:
        state = super().state_dict()
        # saved with "/" for "." in the names, as the nn.ParameterDicts of earlier versions were
        for key, alpha in zip(("alpha_G", "alpha_D"), self._alpha or (), strict=False):
            state[key] = {k.replace(".", "/"): v.detach() for k, v in alpha.items()}
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        if "alpha_G" in state:
            self._alpha = tuple(
                {k.replace("/", "."): nn.Parameter(v.clone()) for k, v in state[key].items()}
                for key in ("alpha_G", "alpha_D")
            )  # type: ignore[assignment]
