"""What the inner-loop meta-algorithms share: their settings and the outer optimizer."""

from __future__ import annotations

import copy
from itertools import islice
from typing import Any

import torch
from torch import Tensor

from metaaug import distributed
from metaaug.data.tasks import Task
from metaaug.meta.optimizers import InnerOptimizer
from metaaug.meta.settings import Adversarial, Augment, OptimizerSpec
from metaaug.models.gan import GAN
from metaaug.precision import FP32, Precision


def _like(p: Tensor, grad: Tensor) -> Tensor:
    """`grad` with `p`'s dtype and strides: the fused optimizers index a gradient as they
    index its parameter (a gradient of other strides, as vmap returns, was applied wrongly)."""
    return torch.empty_like(p).copy_(grad.detach())


def class_rows(adv: Adversarial, tasks: Task) -> tuple[Tensor, Tensor] | None:
    """Each image's row of the class-consistency term's bank, (support [B, ways * S], query
    [B, ways * Q]), for `tasks`; None when the run has no class term."""
    if adv.class_loss is None:
        return None
    ways = len(tasks.class_names) // tasks.support.shape[0]
    rows = adv.class_loss.rows
    return (
        rows(tasks.class_names, ways, tasks.support.shape[1] // ways),
        rows(tasks.class_names, ways, tasks.query.shape[1] // ways),
    )


class OuterLoop:
    """The settings of an inner-loop meta-algorithm and its outer optimizer.

    `apply` takes meta-gradients as dicts keyed like `named_parameters()` of the generator and
    the discriminator (the fp32 initialization: the outer optimizer and its state are fp32 in
    every precision). The arguments are documented in each algorithm's module; `precision`
    is the format the inner loops compute in, `compile` asks for torch.compile of the inner
    round where the algorithm supports it.
    """

    name = "outer"

    def __init__(
        self,
        inner_steps: int,
        inner_optimizer: OptimizerSpec,
        meta_lr: float,
        adversarial: Adversarial,
        meta_optimizer: str = "adam",
        meta_betas: tuple[float, float] = (0.9, 0.999),
        augment: Augment | None = None,
        vectorize: bool = True,
        precision: Precision = FP32,
        compile: bool = False,
    ) -> None:
        self.inner_steps = inner_steps
        self.inner = InnerOptimizer(inner_optimizer)
        self.adversarial = adversarial
        self.augment = augment
        self.vectorize = vectorize
        self.precision = precision
        self.compile = compile
        self._compiled: dict[Any, Any] = {}  # compiled inner rounds, per (G, D) pair
        self._spec = OptimizerSpec(meta_optimizer, meta_lr, tuple(meta_betas))
        self._optimizer: torch.optim.Optimizer | None = None
        self._pending: dict[str, Any] | None = None

    def extra_parameters(self) -> list[Tensor]:
        """Meta-learned tensors besides the initialization (Meta-SGD's learning rates)."""
        return []

    def my_tasks(self, n: int) -> tuple[slice, float]:
        """The tasks of a meta-batch of `n` this process adapts, and their share of the batch:
        all of them and 1 on one process; a slice and its fraction with hardware.distributed.

        An algorithm draws the random numbers of all `n` tasks (every rank's generator stays
        in step), adapts its slice, weights its meta-gradient by the share and sums it over
        the ranks (`over_ranks`): the mean over the whole meta-batch, on every rank.
        """
        part = distributed.current().part(n)
        return part, (part.stop - part.start) / n

    def over_ranks(self, *groups: list[Tensor]) -> tuple[list[Tensor], ...]:
        """Each list of tensors summed over the ranks (one all-reduce for them all); the lists
        themselves on one process."""
        flat = iter(distributed.current().sum([t for g in groups for t in g]))
        return tuple(list(islice(flat, len(g))) for g in groups)

    def apply(
        self,
        init: GAN,
        grads_g: dict[str, Tensor],
        grads_d: dict[str, Tensor],
        extra: list[Tensor] | None = None,
    ) -> None:
        """One outer optimizer step on `init` (and the extra meta-parameters); the optimizer is
        built on the first step, with the state `load_state_dict` left pending."""
        if self._optimizer is None:
            self._optimizer = self._spec.build([*init.parameters(), *self.extra_parameters()])
            if self._pending is not None:
                self._optimizer.load_state_dict(self._pending)
                self._pending = None
        for module, grads in ((init.generator, grads_g), (init.discriminator, grads_d)):
            for name, p in module.named_parameters():
                p.grad = _like(p, grads[name])
        for p, g in zip(self.extra_parameters(), extra or [], strict=False):
            p.grad = _like(p, g)
        self._optimizer.step()
        self._optimizer.zero_grad(set_to_none=True)

    def state_dict(self) -> dict[str, Any]:
        return {"outer": self._optimizer.state_dict() if self._optimizer is not None else None}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        # a copy: the optimizer applies it lazily, and the caller's tensors may change meanwhile
        self._pending = copy.deepcopy(state.get("outer"))
