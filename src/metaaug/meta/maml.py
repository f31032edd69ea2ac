"""MAML for GANs with DAWSON's meta-losses; `first_order=True` is first-order MAML (FOMAML).

Description:
    A GAN has no likelihood to evaluate on a task's held-out (query) images, so the meta-loss
    follows DAWSON. For each task:

    1. Adapt (G, D) from the initialization (theta_G, theta_D) on the support images with
       `inner_steps` rounds of D and G updates: (phi_G, phi_D).
    2. Adapt a second copy of D from theta_D on the query images, against the fixed phi_G:
       phi_D^q, a discriminator that has seen the query set.
    3. Meta-losses: G's is its generator loss against phi_D^q (a validation loss for G);
       D's is phi_D's discriminator loss on the query images against phi_G's samples.
    4. Meta-gradients: dL_G/dtheta_G and dL_D/dtheta_D, differentiated through the whole
       unrolled inner loop with torch.func (second order). phi_D^q (in L_G) and phi_G (in
       L_D) are held fixed: each network is judged by the other one, not trained through it.

    With `first_order=True` the inner gradients are treated as constants, so d(phi)/d(theta)
    is the identity and the meta-gradient is dL/dphi at the adapted weights (Finn et al.'s
    first-order approximation; DAWSON's default). The meta-gradients are averaged over the
    meta-batch (over every rank's tasks with hardware.distributed) and applied by the outer
    optimizer (Adam by default).

Arguments:
    inner_steps, inner_optimizer: the inner loop (SGD or Adam, as pure functions).
    meta_lr, meta_optimizer, meta_betas: the outer update.
    adversarial, augment: losses, penalties and augmentation of every step.
    first_order: FOMAML.
    vectorize: tasks of a meta-batch in one torch.func.vmap computation.
    precision: the format of the inner loops and meta-losses of first-order MAML (the
        meta-gradient reaches the fp32 initialization through the casts, so it and the outer
        update are fp32). Second order runs in fp32 whatever the precision: differentiated
        through a bf16 inner loop, its one-step meta-gradient had cosine 0.76 with the fp32 one
        (digits DCGAN), while fp32 and float64 agreed to 1e-5.
    compile: not supported (torch.compile cannot differentiate a compiled inner loop a
        second time); logged once and run eagerly.

References:
    Finn, Abbeel & Levine (2017), "Model-Agnostic Meta-Learning for Fast Adaptation of Deep
    Networks", Algorithm 1 and Section 5.2 (first-order approximation).
    Liang, Liu & Liu (2020), "DAWSON: A Domain Adaptive Few Shot Generation Framework",
    Section 3 (the GAN meta-losses above).

Example:
    >>> algo = MAML(5, OptimizerSpec("sgd", 1e-2), meta_lr=1e-4, adversarial=Adversarial())
    >>> logs = algo.meta_step(gan, sampler.sample(4), rng)  # tasks need support and query
"""

from __future__ import annotations

import logging
from dataclasses import replace
from functools import partial
from typing import Any

import torch
from torch import Tensor
from torch.utils._pytree import tree_map

from metaaug.data.tasks import Task
from metaaug.errors import UserError
from metaaug.meta.batching import over_tasks, stack, to_device
from metaaug.meta.functional import (
    Noise,
    Pair,
    Params,
    at,
    d_objective,
    detached,
    draw_noise,
    g_objective,
    parameters,
)
from metaaug.meta.inner import inner_loop
from metaaug.meta.optimizers import InnerOptimizer
from metaaug.meta.outer import OuterLoop, class_rows
from metaaug.models.gan import GAN

log = logging.getLogger(__name__)


def dawson_losses(
    pair: Pair,
    optimizer: InnerOptimizer,
    g0: Params,
    d0: Params,
    support: Tensor,
    query: Tensor,
    noise: tuple[Noise, Noise, Noise],
    labels: tuple[Tensor, Tensor] | None = None,
    own: tuple[Tensor | None, Tensor | None] = (None, None),
    *,
    first_order: bool = False,
    lrs_g: Params | None = None,
    lrs_d: Params | None = None,
    judges: tuple[Params, Params] | None = None,
) -> tuple[tuple[Tensor, Tensor], tuple[Tensor, Tensor]]:
    """((L_G, L_D), (inner D loss, inner G loss)) of one task, as pure functions of (g0, d0).

    `noise` holds the draws of the support loop, the query-D loop and the meta-losses.
    `judges` = (phi_D^q, phi_G) replaces the judges computed here (for gradient checks: the
    judges are constants of the meta-gradient either way). `labels` are the (support, query)
    slot labels of a class-conditional pair (None = all slot 0), `own` their rows of the class
    term's bank (`metaaug.gan.class_loss`).
    """
    noise_s, noise_q, noise_m = noise
    labels_s, labels_q = labels if labels is not None else (None, None)
    cast = pair.precision.cast_all
    g1, d1, inner_d, inner_g = inner_loop(
        pair, optimizer, g0, d0, support, noise_s, labels_s, own[0],
        first_order=first_order, lrs_g=lrs_g, lrs_d=lrs_d,
    )  # fmt: skip
    if judges is None:
        judges = query_judges(pair, optimizer, g1, d0, query, noise_q, lrs_d, labels_q)
    d_judge, g_judge = judges
    loss_g = g_objective(
        cast(g1), cast(d_judge), pair, noise_m.z_g[0, 0], at(noise_m.aug_fake_g, 0, 0),
        pair.conditioning.for_step(query, labels_q, noise_m.pick_g[0, 0]), query, labels_q, own[1],
    )  # fmt: skip
    loss_d = d_objective(
        cast(d1), cast(g_judge), pair, query, noise_m.z_d[0, 0], noise_m.eps[0, 0],
        at(noise_m.aug_real, 0, 0), at(noise_m.aug_fake_d, 0, 0),
        pair.conditioning.for_step(query, labels_q, noise_m.pick_d[0, 0]),
    )  # fmt: skip
    return (loss_g, loss_d), (inner_d, inner_g)


def query_judges(
    pair: Pair,
    optimizer: InnerOptimizer,
    g1: Params,
    d0: Params,
    query: Tensor,
    noise_q: Noise,
    lrs_d: Params | None = None,
    labels_q: Tensor | None = None,
) -> tuple[Params, Params]:
    """(phi_D^q, phi_G): D adapted on the query images against the adapted G, and that G;
    both detached, since they only judge the other network in the meta-losses."""
    fixed_g = detached(g1)
    _, d_query, _, _ = inner_loop(
        pair, optimizer, fixed_g, detached(d0), query, noise_q, labels_q, update_g=False,
        lrs_d=None if lrs_d is None else detached(lrs_d),
    )  # fmt: skip
    return detached(d_query), fixed_g


class MAML(OuterLoop):
    name = "maml"

    def __init__(self, *args: Any, first_order: bool = False, **kwargs: Any) -> None:
        """`OuterLoop`'s arguments (documented above) and `first_order` (FOMAML)."""
        super().__init__(*args, **kwargs)
        self.first_order = first_order
        self._said_eager = False  # hardware.compile's line, said once
        if first_order:
            self.name = "fomaml"
        elif self.precision.name != "32":
            log.info(
                "%s differentiates through its inner loop (second order): its inner loops run "
                "in fp32; hardware.precision=%s applies to fine-tuning and validation",
                self.name, self.precision.name,
            )  # fmt: skip
            self.precision = replace(self.precision, name="32")

    def learning_rates(self) -> tuple[Params, Params] | None:
        """Per-weight inner learning rates (Meta-SGD); None for a scalar rate."""
        return None

    def meta_step(self, init: GAN, tasks: Task, rng: torch.Generator) -> dict[str, float]:
        if tasks.query.shape[1] == 0:
            raise UserError(
                f"meta_algo={self.name} needs query images for its meta-loss; set "
                f"meta_algo.query to at least 1 (e.g. 4)"
            )
        if self.compile and not self._said_eager:
            self._said_eager = True
            log.warning(
                "hardware.compile: %s differentiates through its inner loop, which torch.compile "
                "cannot differentiate a second time; running it eagerly", self.name,
            )  # fmt: skip
        prec = self.precision
        pair = Pair(init.generator, init.discriminator, self.adversarial, self.augment, prec)
        g0, d0 = parameters(init.generator), parameters(init.discriminator)
        device = next(iter(g0.values())).device
        support, query = prec.cast(tasks.support.to(device)), prec.cast(tasks.query.to(device))
        size = support.shape[-1]
        steps = self.inner_steps
        draws = [
            (
                draw_noise(pair, steps, support.shape[1], size, rng),
                draw_noise(pair, steps, query.shape[1], size, rng),  # D adapts on the query
                draw_noise(pair, 1, query.shape[1], size, rng),
            )
            for _ in range(support.shape[0])
        ]
        # every task's draws, on every rank (hardware.distributed): the rng stays in step
        mine, share = self.my_tasks(support.shape[0])
        support, query = support[mine], query[mine]
        noise = to_device(tree_map(lambda x: x[mine], stack(draws)), device, support.dtype)
        labels = to_device(tuple(x[mine] for x in tasks.labels()), device)
        rows = class_rows(self.adversarial, tasks)
        own = (None, None) if rows is None else to_device(tuple(x[mine] for x in rows), device)
        lrs = self.learning_rates()
        # the initialization as leaves of the meta-gradient (the tasks' losses close over it)
        g0 = {k: v.requires_grad_(True) for k, v in g0.items()}
        d0 = {k: v.requires_grad_(True) for k, v in d0.items()}
        lrs_g, lrs_d = lrs if lrs is not None else (None, None)
        task_losses = partial(
            dawson_losses, pair, self.inner, g0, d0, first_order=self.first_order, lrs_g=lrs_g,
            lrs_d=lrs_d,
        )  # fmt: skip
        # The tasks' losses run as one vmapped forward; then one reverse pass per meta-loss
        # through all tasks at once: the mean's gradient is the mean of the tasks' gradients.
        with prec.autocast():
            (loss_g, loss_d), (inner_d, inner_g) = over_tasks(
                task_losses, support, query, noise, labels, own, vectorize=self.vectorize
            )
        # each network (and its learning rates) follows its own meta-loss; with
        # hardware.distributed, each rank's share of the meta-batch mean, summed over the ranks
        from_g = [*g0.values(), *(lrs_g.values() if lrs_g else ())]
        from_d = [*d0.values(), *(lrs_d.values() if lrs_d else ())]
        grads_g = torch.autograd.grad(loss_g.mean() * share, from_g, retain_graph=True)
        grads_d = torch.autograd.grad(loss_d.mean() * share, from_d)
        names = ("loss_D", "loss_G", "meta_loss_G", "meta_loss_D")
        logs = [x.detach().mean() * share for x in (inner_d, inner_g, loss_g, loss_d)]
        grads_g, grads_d, logs = self.over_ranks(list(grads_g), list(grads_d), logs)
        extra = None if lrs is None else [*grads_g[len(g0) :], *grads_d[len(d0) :]]
        self.apply(
            init,
            dict(zip(g0, grads_g[: len(g0)], strict=True)),
            dict(zip(d0, grads_d[: len(d0)], strict=True)),
            extra,
        )
        return {name: x.item() for name, x in zip(names, logs, strict=True)}
