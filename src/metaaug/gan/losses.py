"""Adversarial losses and gradient regularizers as pure functions of discriminator outputs.

Conventions: the discriminator returns one unbounded score per image, higher means "real".
Each `d_*` loss is minimized by the discriminator, each `g_*` loss by the generator.

Losses (`LOSSES`):
- nonsat: the original GAN objective for D with the non-saturating G loss (Goodfellow et al.,
  "Generative Adversarial Nets", NeurIPS 2014, section 3).
- wgan_gp: the Wasserstein critic loss (Arjovsky et al., "Wasserstein GAN", ICML 2017); its
  gradient penalty (Gulrajani et al., "Improved Training of Wasserstein GANs", NeurIPS 2017,
  eq. 3) is `gp_of_grads`, weighted by the caller.
- hinge: the hinge loss (Lim & Ye, "Geometric GAN", 2017; Miyato et al., "Spectral
  Normalization for GANs", ICLR 2018, eq. 16-17).
- lsgan: least squares with targets real 1, fake 0, and 1 for G (Mao et al., "Least Squares
  Generative Adversarial Networks", ICCV 2017, eq. 2 with a=0, b=c=1).

Diversity: `mode_seeking` (`gan.diversity`; Mao et al., "Mode Seeking Generative Adversarial
Networks for Diverse Image Synthesis", CVPR 2019, eq. 3), G's term against a conditional
generator that ignores z.

Regularizers: the WGAN-GP penalty (`gp_of_grads`) and R1 (`r1_of_grads`; Mescheder et al.,
"Which Training Methods for GANs do actually Converge?", ICML 2018, eq. 9; the caller's weight
`gan.r1_weight` plays the role of their gamma/2), both of the input gradients that
`scores_and_input_grads` returns: built on `torch.func.vjp` under `torch.func.grad` and `vmap`
(the functional inner loop), where `torch.autograd.grad` does not work. The gradient norm is
taken over each sample's flattened pixels (FIGR's code took it over channels only, which
penalizes every pixel position separately).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from metaaug.errors import BadValue

LOSSES = ("nonsat", "wgan_gp", "hinge", "lsgan")


def check_loss(kind: str) -> str:
    if kind not in LOSSES:
        raise BadValue(f"{{loss}}={kind!r} is not known; use one of {', '.join(LOSSES)}")
    return kind


def d_loss(kind: str, real: Tensor, fake: Tensor) -> Tensor:
    """Discriminator loss on scores of real and generated images (penalty not included)."""
    if kind == "nonsat":
        # maximize log D(x) + log(1 - D(G(z))), written with softplus for stability
        return F.softplus(-real).mean() + F.softplus(fake).mean()
    if kind == "wgan_gp":
        # the critic maximizes E[D(x)] - E[D(G(z))]
        return fake.mean() - real.mean()
    if kind == "hinge":
        # push real scores above +1 and fake scores below -1; no gradient beyond the margin
        return F.relu(1 - real).mean() + F.relu(1 + fake).mean()
    if kind == "lsgan":
        # regress real scores to 1 and fake scores to 0
        return 0.5 * ((real - 1) ** 2).mean() + 0.5 * (fake**2).mean()
    raise ValueError(kind)


def g_loss(kind: str, fake: Tensor) -> Tensor:
    """Generator loss on the discriminator's scores of generated images."""
    if kind == "nonsat":
        # non-saturating: maximize log D(G(z)) rather than minimize log(1 - D(G(z)))
        return F.softplus(-fake).mean()
    if kind in ("wgan_gp", "hinge"):
        return -fake.mean()
    if kind == "lsgan":
        # regress fake scores to the real target 1
        return 0.5 * ((fake - 1) ** 2).mean()
    raise ValueError(kind)


def gp_of_grads(grads: Tensor) -> Tensor:
    """E[(||g||_2 - 1)^2], the norm over each sample's flattened gradient."""
    return ((grads.flatten(1).norm(2, dim=1) - 1) ** 2).mean()


def r1_of_grads(grads: Tensor) -> Tensor:
    """E[||g||_2^2], the squared norm over each sample's flattened gradient."""
    return grads.flatten(1).pow(2).sum(dim=1).mean()


def scores_and_input_grads(critic: Callable[[Tensor], Tensor], x: Tensor) -> tuple[Tensor, Tensor]:
    """(critic(x), grad_x sum(critic(x))), both differentiable w.r.t. the critic's weights
    (not w.r.t. whatever made `x`: only the critic is trained on these).

    Under a torch.func transform (`grad`/`vmap` of the functional inner loop) it is built on
    `torch.func.vjp`; elsewhere on `torch.autograd.grad`, the same numbers with less dispatch
    overhead (a D step of the digits DCGAN: 2.3 against 2.5 ms). One call on a fused batch
    [real, fake, interpolates] gives the D loss, the WGAN-GP term (`gp_of_grads` of the
    interpolates' rows) and R1 (`r1_of_grads` of the real rows).
    """
    if torch._C._functorch.peek_interpreter_stack() is None and not torch.compiler.is_compiling():
        x = x.detach().requires_grad_()
        with torch.enable_grad():
            scores = critic(x)
            (grads,) = torch.autograd.grad(scores.sum(), x, create_graph=True)
        return scores, grads
    scores, pullback = torch.func.vjp(critic, x)
    (grads,) = pullback(torch.ones_like(scores))
    return scores, grads


# keeps the mode-seeking ratio's reciprocal finite when two draws give one image (as MSGAN's code)
MODE_SEEKING_EPS = 1e-5


def mode_seeking(made: Tensor, other: Tensor, z: Tensor, z_other: Tensor) -> Tensor:
    """MSGAN's term, minimized by G: 1 / (mean|G(z) - G(z')| / mean|z - z'| + eps) for images
    `made` = G(z, c) and `other` = G(z', c) under the same conditions c. Large when z barely
    changes the image: an image-conditioned U-Net can route its input through the skips and
    draw one image per condition, whatever z."""
    ratio = (made - other).abs().mean() / (z - z_other).abs().mean()
    return 1 / (ratio + MODE_SEEKING_EPS)
