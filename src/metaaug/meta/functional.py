"""A GAN pair as pure functions of (parameters, images, random draws), for torch.func: the
pair, its random draws and its two objectives. `metaaug.meta.inner` builds the inner loop
on them.

Every meta-algorithm builds on that loop: Reptile maps a task to its adapted weights, MAML
and Meta-SGD differentiate a meta-loss through it. Because all random numbers (noise vectors,
interpolation weights, augmentation draws, DAGAN's image pairings) are drawn up front by
`draw_noise`, a task is a pure function of its inputs, so `torch.func.vmap` can run a
meta-batch of tasks as one computation and give the same numbers as a loop over tasks.

Conditioning: what both networks see besides z or x comes from the generator's kind
(`metaaug.models.conditioning`), one condition per step: G(z, c) and D(x, c).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import partial
from typing import NamedTuple

import torch
from torch import Tensor, nn
from torch.func import functional_call
from torch.utils._pytree import tree_map

from metaaug.gan.losses import (
    d_loss,
    g_loss,
    gp_of_grads,
    mode_seeking,
    r1_of_grads,
    scores_and_input_grads,
)
from metaaug.meta.batching import stack
from metaaug.meta.settings import Adversarial, Augment
from metaaug.models.conditioning import Conditioning, conditioning
from metaaug.precision import FP32, Precision, widened

Params = dict[str, Tensor]


class Noise(NamedTuple):
    """All random draws of one inner loop (a pytree, so vmap can batch it over tasks)."""

    z_d: Tensor  # [steps, d_steps, n, z_dim]   noise of the fakes in D steps
    eps: Tensor  # [steps, d_steps, n, 1, 1, 1] interpolation weights of WGAN-GP
    z_g: Tensor  # [steps, g_steps, n, z_dim]   noise of the fakes in G steps
    aug_real: dict[str, Tensor]  # augmentation draws, each [steps, d_steps, n, ...]
    aug_fake_d: dict[str, Tensor]
    aug_fake_g: dict[str, Tensor]  # [steps, g_steps, n, ...]
    pick_d: Tensor  # [steps, d_steps, n, ...] int64: the images each image is conditioned with
    pick_g: Tensor  # [steps, g_steps, n, ...]   (`Conditioning.picks`; empty when none)


@dataclass(frozen=True)
class Pair:
    """A GAN pair seen as two pure functions of their parameters.

    `precision` is the format the pair computes in: the loops below hand `g` and `d` working
    copies of the weights in that format (`precision.cast_all`) and keep fp32 masters.
    """

    generator: nn.Module
    discriminator: nn.Module
    adversarial: Adversarial
    augment: Augment | None = None
    precision: Precision = FP32

    @property
    def z_dim(self) -> int:
        return int(self.generator.z_dim)

    @property
    def conditioning(self) -> Conditioning:
        """What both networks see besides z or x."""
        return conditioning(self.generator)

    def g(self, params: Params, z: Tensor, cond: Tensor | None = None) -> Tensor:
        return functional_call(self.generator, params, (z,) if cond is None else (z, cond))

    def d(self, params: Params, x: Tensor, cond: Tensor | None = None) -> Tensor:
        return functional_call(self.discriminator, params, (x,) if cond is None else (x, cond))


def parameters(module: nn.Module) -> Params:
    """A detached copy of a module's parameters as a dict (the functional form's input)."""
    return {k: v.detach().clone() for k, v in module.named_parameters()}


def draw_noise(
    pair: Pair, steps: int, n: int, image_size: int, rng: torch.Generator, groups: int = 1
) -> Noise:
    """The random draws of `steps` inner rounds on `n` images (`groups` classes in equal
    consecutive blocks, for DAGAN's pairing), in a fixed order."""
    adv = pair.adversarial

    def aug(rounds: int, wanted: bool) -> dict[str, Tensor]:
        if pair.augment is None or not wanted:
            return {}
        draws = [pair.augment.sample_params(n, rng, image_size) for _ in range(steps * rounds)]
        return tree_map(lambda x: x.reshape(steps, rounds, *x.shape[1:]), stack(draws))

    z_d = torch.randn(steps, adv.d_steps, n, pair.z_dim, generator=rng)
    eps = torch.rand(steps, adv.d_steps, n, 1, 1, 1, generator=rng)
    z_g = torch.randn(steps, adv.g_steps, n, pair.z_dim, generator=rng)
    fakes = getattr(pair.augment, "differentiable", False)  # DiffAugment: the fakes too
    augs = aug(adv.d_steps, True), aug(adv.d_steps, fakes), aug(adv.g_steps, fakes)
    picks = [pair.conditioning.picks((steps, rounds), n, groups, rng)
             for rounds in (adv.d_steps, adv.g_steps)]  # fmt: skip
    return Noise(z_d, eps, z_g, *augs, *picks)


def at(draws: Mapping[str, Tensor], t: int, k: int) -> dict[str, Tensor]:
    """The augmentation draws of round `t`, step `k`."""
    return {name: v[t, k] for name, v in draws.items()}


def _augment(pair: Pair, x: Tensor, draws: Mapping[str, Tensor]) -> Tensor:
    return pair.augment.apply(x, dict(draws)) if draws else x  # type: ignore[union-attr]


def d_objective(
    d: Params,
    g: Params,
    pair: Pair,
    real: Tensor,
    z: Tensor,
    eps: Tensor,
    aug_real: Mapping[str, Tensor],
    aug_fake: Mapping[str, Tensor],
    cond: Tensor | None = None,
) -> Tensor:
    """The discriminator's loss (with its penalties) on one task's real images; the fakes and
    the interpolates share the reals' condition `cond`.

    D scores the images in two calls: the rows whose input gradient a penalty needs (the
    interpolates for WGAN-GP, the reals for R1) with that gradient, the others without. One
    fused call would differentiate all rows and then differentiate that again: on FIGR's pair
    a third more work per D step for WGAN-GP alone.
    """
    adv = pair.adversarial
    parts = {
        "real": _augment(pair, real, aug_real),
        "fake": _augment(pair, pair.g(g, z, cond), aug_fake),
    }
    if adv.gp:
        parts["mix"] = eps * parts["real"] + (1 - eps) * parts["fake"]
    need = {"mix"} | ({"real"} if adv.r1_weight > 0 else set())
    scores, input_grads = {}, {}
    for graded in (False, True):
        keys = [k for k in parts if (k in need) == graded]
        if not keys:
            continue
        xs = torch.cat([parts[k] for k in keys])
        score = partial(pair.d, d, cond=None if cond is None else torch.cat([cond] * len(keys)))
        if graded:
            s, grads = scores_and_input_grads(score, xs)
            input_grads.update(zip(keys, grads.chunk(len(keys)), strict=True))
        else:
            s = score(xs)
        scores.update(zip(keys, s.chunk(len(keys)), strict=True))
    # losses, penalties and their reductions in fp32 whatever the networks compute in
    loss = d_loss(adv.loss, widened(scores["real"]), widened(scores["fake"]))
    if adv.gp:
        loss = loss + adv.gp_weight * gp_of_grads(widened(input_grads["mix"]))
    if adv.r1_weight > 0:
        loss = loss + adv.r1_weight * r1_of_grads(widened(input_grads["real"]))
    return loss


def g_objective(
    g: Params,
    d: Params,
    pair: Pair,
    z: Tensor,
    aug_fake: Mapping[str, Tensor],
    cond: Tensor | None = None,
    real: Tensor | None = None,
    labels: Tensor | None = None,
    own: Tensor | None = None,
) -> Tensor:
    """The generator's loss: make the discriminator score its images (under `cond`) as real;
    with `gan.class_loss`, plus the class-consistency term against the step's `real` images
    (fake i has real i's class; `labels` and `own` as `ClassLoss` takes them); with
    `gan.diversity`, plus the mode-seeking term, image i's second draw being z of image i-1
    under i's condition (another draw from the same prior: no random number is added, so the
    run's other draws stay as they were)."""
    adv = pair.adversarial
    made = pair.g(g, z, cond)
    loss = g_loss(adv.loss, widened(pair.d(d, _augment(pair, made, aug_fake), cond)))
    if adv.diversity > 0 and z.shape[0] > 1:
        z_other = z.roll(1, dims=0)
        other = pair.g(g, z_other, cond)
        loss = loss + adv.diversity * mode_seeking(widened(made), widened(other), z, z_other)
    if adv.class_loss is not None and real is not None:
        loss = loss + adv.class_loss(made, real, labels, own)
    return loss


def detached(params: Params) -> Params:
    """The same tensors cut from the graph (and from any torch.func transform's gradient)."""
    return {k: v.detach() for k, v in params.items()}
