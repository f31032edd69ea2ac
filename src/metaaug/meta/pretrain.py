"""Pretrain: the plain transfer baseline. One GAN trained on all meta-train classes pooled.

Description:
    Each "meta-step" is one ordinary adversarial update (D steps then G steps, persistent Adam
    state) on the images of a meta-batch of classes, pooled into one batch. Fine-tuned on the
    target afterwards like every other initialization, it answers the question every
    meta-learned result must face: does meta-learning beat plain pre-training + fine-tuning?

Arguments:
    optimizer: the GAN optimizer (Adam, lr 2e-4, betas 0.5/0.999 by default).
    adversarial, augment: losses, penalties and augmentation of each update.
    precision: the format the networks compute in (weights and Adam state stay fp32).

References:
    Plain fine-tuning as a strong few-shot generation baseline: Wang et al. (2018),
    "Transferring GANs: generating images from limited data", Section 3.

Example:
    >>> algo = Pretrain(OptimizerSpec("adam", 2e-4), Adversarial())
    >>> logs = algo.meta_step(gan, sampler.sample(8), rng)  # 8 classes pooled into one batch
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any

import torch

from metaaug.data.tasks import Task
from metaaug.meta.adapt import masters, module_round, module_state
from metaaug.meta.functional import Pair
from metaaug.meta.optimizers import InPlaceOptimizer
from metaaug.meta.outer import class_rows
from metaaug.meta.settings import Adversarial, Augment, OptimizerSpec
from metaaug.models.conditioning import conditioning
from metaaug.models.gan import GAN
from metaaug.precision import FP32, Precision

log = logging.getLogger(__name__)


class Pretrain:
    name = "pretrain"

    def __init__(
        self,
        optimizer: OptimizerSpec,
        adversarial: Adversarial,
        augment: Augment | None = None,
        precision: Precision = FP32,
        compile: bool = False,
    ) -> None:
        self.spec = optimizer
        self.adversarial = adversarial
        self.augment = augment
        self.precision = precision
        if compile:
            log.warning(
                "hardware.compile: pretrain updates its modules in place with torch's fused "
                "optimizer, which is not compiled; running it eagerly"
            )
        self._opt: tuple[torch.optim.Optimizer, torch.optim.Optimizer] | None = None
        self._pending: dict[str, Any] | None = None

    def meta_step(self, init: GAN, tasks: Task, rng: torch.Generator) -> dict[str, float]:
        optimizer = InPlaceOptimizer(self.spec)
        if self._opt is None:
            self._opt = (
                optimizer.init(masters(init.generator)),
                optimizer.init(masters(init.discriminator)),
            )
            if self._pending is not None:
                self._opt[0].load_state_dict(self._pending["G"])
                self._opt[1].load_state_dict(self._pending["D"])
        device = next(init.parameters()).device
        images = torch.cat([tasks.support, tasks.query], dim=1).flatten(0, 1).to(device)
        labels = torch.cat(tasks.labels(), dim=1).flatten().to(device)
        adv = self.adversarial
        if not conditioning(init.generator).own_class:
            # pooled classes: an unconditional (or slot-conditioned) fake has no class of its
            # own here, so the class term has nothing to pull it to (the fine-tune has it)
            adv = replace(adv, class_loss=None)
        rows = class_rows(adv, tasks)
        own = None if rows is None else torch.cat(rows, dim=1).flatten().to(device)
        pair = Pair(init.generator, init.discriminator, adv, self.augment, self.precision)
        _, loss_d, loss_g = module_round(
            pair, optimizer, module_state(pair, *self._opt), images, rng, labels,
            groups=tasks.support.shape[0], own=own,
        )  # fmt: skip
        return {"loss_D": loss_d.item(), "loss_G": loss_g.item()}

    def state_dict(self) -> dict[str, Any]:
        if self._opt is None:
            return {}
        return {"G": self._opt[0].state_dict(), "D": self._opt[1].state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._pending = state or None
