"""Reptile for GANs, as in FIGR.

Description:
    For each task of a meta-batch, copy the initialization theta, adapt the copy with
    `inner_steps` rounds of D and G updates on the task's images to get phi_i, then move the
    initialization towards the adapted weights. With plain SGD as the outer optimizer this is

        theta <- theta + meta_lr * (mean_i phi_i - theta)

    and in general the outer optimizer (FIGR: Adam) takes `theta - mean_i phi_i` as the
    gradient. Generator and discriminator are meta-learned together.

Arguments:
    inner_steps: rounds of (D step, G step) per task.
    inner_optimizer: optimizer of the inner loop (FIGR: SGD, lr 1e-3), rebuilt per task.
    meta_lr, meta_optimizer, meta_betas: the outer update (FIGR: Adam, lr 1e-4).
    adversarial: loss and penalty of each inner update.

References:
    Nichol, Achiam & Schulman (2018), "On First-Order Meta-Learning Algorithms", Algorithm 2
    (batched Reptile). Clouatre & Demers (2019), "FIGR: Few-shot Image Generation with
    Reptile", Section 3.

Example:
    >>> algo = Reptile(10, OptimizerSpec("sgd", 1e-3), meta_lr=1e-4, adversarial=Adversarial())
    >>> logs = algo.meta_step(gan, sampler.sample(1), rng)  # gan is updated in place
"""

from __future__ import annotations

import copy
from typing import Any

import torch

from metaaug.data.tasks import Task
from metaaug.meta.adapt import Adversarial, Augment, OptimizerSpec, adapt
from metaaug.models.gan import GAN


class Reptile:
    name = "reptile"

    def __init__(
        self,
        inner_steps: int,
        inner_optimizer: OptimizerSpec,
        meta_lr: float,
        adversarial: Adversarial,
        meta_optimizer: str = "adam",
        meta_betas: tuple[float, float] = (0.9, 0.999),
        augment: Augment | None = None,
    ) -> None:
        self.inner_steps = inner_steps
        self.inner_optimizer = inner_optimizer
        self.adversarial = adversarial
        self.augment = augment
        self._outer_spec = OptimizerSpec(meta_optimizer, meta_lr, tuple(meta_betas))
        self._outer: torch.optim.Optimizer | None = None
        self._pending_state: dict[str, Any] | None = None
        self._work: GAN | None = None

    def _bind(self, init: GAN) -> None:
        """Outer optimizer and scratch copy, made once for the initialization's parameters."""
        if self._outer is None:
            self._outer = self._outer_spec.build(list(init.parameters()))
            if self._pending_state is not None:
                self._outer.load_state_dict(self._pending_state)
                self._pending_state = None
            self._work = copy.deepcopy(init)

    def meta_step(self, init: GAN, tasks: Task, rng: torch.Generator) -> dict[str, float]:
        self._bind(init)
        assert self._outer is not None and self._work is not None
        params = list(init.parameters())
        work_params = list(self._work.parameters())
        delta = [torch.zeros_like(p) for p in params]
        losses_d, losses_g = [], []
        for i in range(tasks.support.shape[0]):
            images = torch.cat([tasks.support[i], tasks.query[i]]).to(params[0].device)
            with torch.no_grad():
                for w, p in zip(work_params, params, strict=True):
                    w.copy_(p)
            log = adapt(
                self._work,
                images,
                self.inner_steps,
                self.inner_optimizer,
                self.adversarial,
                rng,
                augment=self.augment,
            ).mean()
            losses_d.append(log["D"])
            losses_g.append(log["G"])
            with torch.no_grad():
                for d, w, p in zip(delta, work_params, params, strict=True):
                    d.add_(w - p)
        n = tasks.support.shape[0]
        # the outer "gradient" is theta - mean(phi_i)
        for p, d in zip(params, delta, strict=True):
            p.grad = -d / n
        self._outer.step()
        self._outer.zero_grad(set_to_none=True)
        update_norm = torch.sqrt(sum((d / n).pow(2).sum() for d in delta)).item()
        return {
            "loss_D": sum(losses_d) / n,
            "loss_G": sum(losses_g) / n,
            "adapt_distance": update_norm,
        }

    def state_dict(self) -> dict[str, Any]:
        return {"outer": self._outer.state_dict() if self._outer is not None else None}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        # a copy: the optimizer applies it lazily, and the caller's tensors may change meanwhile
        self._pending_state = copy.deepcopy(state.get("outer"))
