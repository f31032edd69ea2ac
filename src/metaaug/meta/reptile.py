"""Reptile for GANs, as in FIGR.

Description:
    For each task of a meta-batch, adapt the initialization theta with `inner_steps` rounds of
    D and G updates on the task's images, giving phi_i; then move the initialization towards
    the adapted weights. With plain SGD as the outer optimizer this is

        theta <- theta + meta_lr * (mean_i phi_i - theta)

    and in general the outer optimizer (FIGR: Adam) takes `theta - mean_i phi_i` as the
    gradient. Generator and discriminator are meta-learned together. The tasks of a meta-batch
    adapt in one vectorized computation (`vectorize=True`) or one after the other; with
    hardware.distributed, each rank adapts its slice of them (`metaaug.distributed`).

Arguments:
    inner_steps: rounds of (D step, G step) per task.
    inner_optimizer: optimizer of the inner loop (FIGR: SGD, lr 1e-3), fresh per task.
    meta_lr, meta_optimizer, meta_betas: the outer update (FIGR: Adam, lr 1e-4).
    adversarial: loss and penalties of each inner update.
    augment: augmentation inside the inner loop (None for none).
    vectorize: run the meta-batch with torch.func.vmap rather than a Python loop.
    precision: the format of the inner loops (the initialization and the outer update stay
        fp32); compile: torch.compile the inner round (vmapped over the meta-batch or not).

References:
    Nichol, Achiam & Schulman (2018), "On First-Order Meta-Learning Algorithms", Algorithm 2
    (batched Reptile). Clouatre & Demers (2019), "FIGR: Few-shot Image Generation with
    Reptile", Section 3.

Example:
    >>> algo = Reptile(10, OptimizerSpec("sgd", 1e-3), meta_lr=1e-4, adversarial=Adversarial())
    >>> logs = algo.meta_step(gan, sampler.sample(4), rng)  # gan is updated in place
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

import torch
from torch import Tensor
from torch.utils._pytree import tree_map

from metaaug.data.tasks import Task
from metaaug.meta.batching import over_tasks, stack, to_device
from metaaug.meta.compiled import Compiled
from metaaug.meta.functional import Noise, Pair, draw_noise, parameters
from metaaug.meta.inner import LoopState, inner_round, mean_loss, round_noise, start
from metaaug.meta.outer import OuterLoop, class_rows
from metaaug.models.gan import GAN


class Reptile(OuterLoop):
    name = "reptile"

    def _adapt(self, pair: Pair) -> Callable[..., Any]:
        """(state, images, noise, labels, own) -> (phi, loss_D, loss_G) of every task, each
        with a leading task dimension (`own`: the images' rows of the class term's bank).

        Vectorized, each round runs as one vmapped computation over the tasks; otherwise each
        task runs all its rounds in turn. The round is what `hardware.compile` compiles.
        """
        step = partial(inner_round, pair, self.inner)
        if self.vectorize:
            step = partial(over_tasks, step, vectorize=True)
        if self.compile:
            key = (id(pair.generator), id(pair.discriminator))
            if key not in self._compiled:
                self._compiled[key] = Compiled(step, f"{self.name}'s inner round")
            step = self._compiled[key]

        def rounds(state: LoopState, images: Tensor, noise: Noise, labels: Tensor,
                   own: Tensor | None):  # fmt: skip
            losses_d, losses_g = [], []
            for t in range(self.inner_steps):
                noise_t = round_noise(noise, t, batched=self.vectorize)
                state, loss_d, loss_g = step(state, images, noise_t, labels, own)
                losses_d.append(loss_d)
                losses_g.append(loss_g)
            return state, mean_loss(losses_d, images), mean_loss(losses_g, images)

        return rounds if self.vectorize else partial(over_tasks, rounds, vectorize=False)

    def meta_step(self, init: GAN, tasks: Task, rng: torch.Generator) -> dict[str, float]:
        pair = Pair(init.generator, init.discriminator, self.adversarial, self.augment,
                    self.precision)  # fmt: skip
        g0, d0 = parameters(init.generator), parameters(init.discriminator)
        device = next(iter(g0.values())).device
        images = self.precision.cast(torch.cat([tasks.support, tasks.query], dim=1).to(device))
        labels = torch.cat(tasks.labels(), dim=1).to(device)
        b, n, size = images.shape[0], images.shape[1], images.shape[-1]
        # every task's draws, on every rank (hardware.distributed): the rng stays in step
        noise = stack([draw_noise(pair, self.inner_steps, n, size, rng) for _ in range(b)])
        mine, share = self.my_tasks(b)
        images, labels = images[mine], labels[mine]
        rows = class_rows(self.adversarial, tasks)  # in the order of `images`
        own = None if rows is None else torch.cat(rows, dim=1)[mine].to(device)
        noise = to_device(tree_map(lambda x: x[mine], noise), device, images.dtype)

        # every task starts from theta and adapts to phi_i
        here = images.shape[0]
        state = tree_map(lambda x: x.expand(here, *x.shape), start(pair, self.inner, g0, d0))
        with self.precision.autocast():
            phi, loss_d, loss_g = self._adapt(pair)(state, images, noise, labels, own)
        # the outer "gradient" is theta - mean_i(phi_i): this rank's share of it, summed over
        # the ranks (on one process, share = 1 and the sum is the term itself)
        grads_g, grads_d, losses = self.over_ranks(
            [(g0[k] - phi.g[k].mean(0)) * share for k in g0],
            [(d0[k] - phi.d[k].mean(0)) * share for k in d0],
            [loss_d.mean() * share, loss_g.mean() * share],
        )
        grads_g, grads_d = dict(zip(g0, grads_g, strict=True)), dict(zip(d0, grads_d, strict=True))
        self.apply(init, grads_g, grads_d)
        moved = sum(v.pow(2).sum() for v in [*grads_g.values(), *grads_d.values()])
        return {
            "loss_D": losses[0].item(),
            "loss_G": losses[1].item(),
            "adapt_distance": float(moved) ** 0.5,
        }
