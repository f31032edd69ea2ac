"""Adversarial losses as pure functions of discriminator outputs.

Conventions: the discriminator returns one unbounded score per image, higher means "real".
Each `d_*` loss is minimized by the discriminator, each `g_*` loss by the generator.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from metaaug.errors import UserError

LOSSES = ("nonsat", "wgan_gp")


def check_loss(kind: str) -> str:
    if kind not in LOSSES:
        raise UserError(f"gan.loss={kind!r} is not known; use one of {', '.join(LOSSES)}")
    return kind


def d_loss(kind: str, real: Tensor, fake: Tensor) -> Tensor:
    """Discriminator loss on scores of real and generated images (penalty not included)."""
    if kind == "nonsat":
        # maximize log D(x) + log(1 - D(G(z))), written with softplus for stability
        return F.softplus(-real).mean() + F.softplus(fake).mean()
    if kind == "wgan_gp":
        # the critic maximizes E[D(x)] - E[D(G(z))]
        return fake.mean() - real.mean()
    raise ValueError(kind)


def g_loss(kind: str, fake: Tensor) -> Tensor:
    """Generator loss on the discriminator's scores of generated images."""
    if kind == "nonsat":
        # non-saturating: maximize log D(G(z)) rather than minimize log(1 - D(G(z)))
        return F.softplus(-fake).mean()
    if kind == "wgan_gp":
        return -fake.mean()
    raise ValueError(kind)


def gradient_penalty(
    critic: Callable[[Tensor], Tensor],
    real: Tensor,
    fake: Tensor,
    generator: torch.Generator | None = None,
) -> Tensor:
    """WGAN-GP penalty E[(||grad_x D(x_hat)||_2 - 1)^2] on random interpolates (Gulrajani 2017).

    The gradient norm is taken over each sample's flattened pixels. (FIGR's code took it over
    channels only, which penalizes every pixel position separately.)
    """
    eps = torch.rand(real.shape[0], 1, 1, 1, generator=generator).to(real)
    x_hat = (eps * real + (1 - eps) * fake).requires_grad_(True)
    scores = critic(x_hat)
    (grad,) = torch.autograd.grad(scores.sum(), x_hat, create_graph=True)
    norms = grad.flatten(1).norm(2, dim=1)
    return ((norms - 1) ** 2).mean()
