"""The GAN inner loop: adapt a generator/discriminator pair to a handful of images.

Meta-training (the inner loop of every task), validation and the final fine-tune on the target
shots all run this one loop, so an initialization is always judged by the procedure it was
trained for.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from metaaug.gan.losses import check_loss, d_loss, g_loss, interpolates, penalty, r1_penalty
from metaaug.models.gan import GAN

Augment = Callable[[Tensor, torch.Generator], Tensor]


@dataclass(frozen=True)
class Adversarial:
    """How one adversarial update is computed (shared by every loop of a run)."""

    loss: str = "wgan_gp"
    gp_weight: float = 10.0
    d_steps: int = 1
    g_steps: int = 1
    r1_weight: float = 0.0

    @property
    def gp(self) -> bool:
        return self.loss == "wgan_gp" and self.gp_weight > 0

    def __post_init__(self) -> None:
        check_loss(self.loss)


@dataclass(frozen=True)
class OptimizerSpec:
    """An optimizer for both G and D, rebuilt fresh for every adaptation (no state leaks)."""

    name: str = "adam"
    lr: float = 2e-4
    betas: tuple[float, float] = (0.5, 0.999)

    def build(self, params: list[nn.Parameter]) -> torch.optim.Optimizer:
        if self.name == "sgd":
            return torch.optim.SGD(params, lr=self.lr)
        if self.name == "adam":
            return torch.optim.Adam(params, lr=self.lr, betas=tuple(self.betas))
        raise ValueError(f"optimizer {self.name!r} is not known; use 'sgd' or 'adam'")


@dataclass
class AdaptLog:
    d_loss: list[float]
    g_loss: list[float]

    def mean(self) -> dict[str, float]:
        n = max(len(self.d_loss), 1)
        return {"D": sum(self.d_loss) / n, "G": sum(self.g_loss) / n}


def _real_batch(images: Tensor, batch_size: int | None, rng: torch.Generator) -> Tensor:
    if batch_size is None or batch_size >= images.shape[0]:
        return images
    idx = torch.randperm(images.shape[0], generator=rng)[:batch_size]
    return images[idx.to(images.device)]


def adversarial_step(
    gan: GAN,
    real: Tensor,
    opt_g: torch.optim.Optimizer,
    opt_d: torch.optim.Optimizer,
    adv: Adversarial,
    rng: torch.Generator,
    augment: Augment | None = None,
) -> tuple[Tensor, Tensor]:
    """One round of D updates then G updates; returns the last (D loss, G loss), detached.

    D scores real, fake (and, for WGAN-GP, interpolated) images in one forward pass: the
    discriminator has no batch statistics, so this equals separate passes, and on small
    images the per-call overhead is most of the cost.

    A plain augmentation (classic) changes the real images only, like a bigger dataset. A
    differentiable one (DiffAugment) is applied to real and generated images in both steps,
    so D never sees an un-augmented image and G's gradient flows through it.
    """
    G, D = gan.generator, gan.discriminator
    n = real.shape[0]
    both = augment is not None and getattr(augment, "differentiable", False)
    for _ in range(adv.d_steps):
        # Update D: score real images high and generated ones low
        x = augment(real, rng) if augment is not None else real
        with torch.no_grad():
            fake = G(gan.noise(n, rng))
        if both:
            fake = augment(fake, rng)
        if adv.r1_weight > 0:
            x = x.detach().requires_grad_(True)
        batch = [x, fake, interpolates(x.detach(), fake, rng)] if adv.gp else [x, fake]
        scores = D(torch.cat(batch))
        loss_d = d_loss(adv.loss, scores[:n], scores[n : 2 * n])
        if adv.gp:
            loss_d = loss_d + adv.gp_weight * penalty(scores[2 * n :], batch[2])
        if adv.r1_weight > 0:
            loss_d = loss_d + adv.r1_weight * r1_penalty(scores[:n], x)
        opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        opt_d.step()
    # D's weights need no gradient in the G step; skipping them saves a third of its backward
    d_params = list(D.parameters())
    for p in d_params:
        p.requires_grad_(False)
    try:
        for _ in range(adv.g_steps):
            # Update G: make D score generated images as real
            fake = G(gan.noise(n, rng))
            loss_g = g_loss(adv.loss, D(augment(fake, rng) if both else fake))
            opt_g.zero_grad(set_to_none=True)
            loss_g.backward()
            opt_g.step()
    finally:
        for p in d_params:
            p.requires_grad_(True)
    return loss_d.detach(), loss_g.detach()


def adapt(
    gan: GAN,
    images: Tensor,
    steps: int,
    optimizer: OptimizerSpec,
    adv: Adversarial,
    rng: torch.Generator,
    *,
    batch_size: int | None = None,
    augment: Augment | None = None,
    on_step: Callable[[int, float, float], None] | None = None,
) -> AdaptLog:
    """Train `gan` in place on `images` for `steps` rounds of D and G updates.

    Each round draws `batch_size` real images (all of them when None) and as many fakes.
    Optimizers are built here, so every adaptation starts from clean optimizer state.
    """
    opt_g = optimizer.build(list(gan.generator.parameters()))
    opt_d = optimizer.build(list(gan.discriminator.parameters()))
    d_losses: list[Tensor] = []
    g_losses: list[Tensor] = []
    for step in range(steps):
        real = _real_batch(images, batch_size, rng)
        ld, lg = adversarial_step(gan, real, opt_g, opt_d, adv, rng, augment)
        d_losses.append(ld)
        g_losses.append(lg)
        if on_step is not None:
            on_step(step, float(ld), float(lg))
    # one host transfer at the end rather than a .item() sync per step
    dl = torch.stack(d_losses).tolist() if d_losses else []
    gl = torch.stack(g_losses).tolist() if g_losses else []
    return AdaptLog(dl, gl)


@torch.no_grad()
def sample(gan: GAN, n: int, rng: torch.Generator, batch_size: int = 256) -> Tensor:
    """`n` generated images on the CPU, in batches."""
    out = []
    for start in range(0, n, batch_size):
        z = gan.noise(min(batch_size, n - start), rng)
        out.append(gan.generator(z).float().cpu())
    return torch.cat(out) if out else torch.empty(0)
