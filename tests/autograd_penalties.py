"""The WGAN-GP and R1 penalties written out with `torch.autograd.grad(create_graph=True)` on
live modules: the textbook form the tests hold metaaug's fused, torch.func-ready form
(`scores_and_input_grads` + `gp_of_grads` / `r1_of_grads`) to."""

from __future__ import annotations

import torch
from torch import Tensor


def interpolates(real: Tensor, fake: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """Random points on the lines between real and fake images, ready for a gradient (eps drawn
    as the fine-tune's fused batch draws it)."""
    eps = torch.rand(real.shape[0], 1, 1, 1, generator=generator).to(real)
    return (eps * real + (1 - eps) * fake).requires_grad_(True)


def penalty(scores: Tensor, x_hat: Tensor) -> Tensor:
    """WGAN-GP (Gulrajani et al. 2017, eq. 3): E[(||grad_x D(x_hat)||_2 - 1)^2], the norm over
    each sample's flattened pixels, from the critic's scores of the interpolates `x_hat`."""
    (grad,) = torch.autograd.grad(scores.sum(), x_hat, create_graph=True)
    return ((grad.flatten(1).norm(2, dim=1) - 1) ** 2).mean()


def r1_penalty(scores_real: Tensor, x_real: Tensor) -> Tensor:
    """R1 (Mescheder et al. 2018, eq. 9, without gamma/2): E[||grad_x D(x)||_2^2] over reals."""
    (grad,) = torch.autograd.grad(scores_real.sum(), x_real, create_graph=True)
    return grad.flatten(1).pow(2).sum(dim=1).mean()
