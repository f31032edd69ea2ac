"""The GAN inner loop: adapt a generator/discriminator pair to a handful of images.

Meta-training (the inner loop of every task), validation and the final fine-tune on the target
shots all run this one loop, so an initialization is always judged by the procedure it was
trained for.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from metaaug.meta.batching import to_device
from metaaug.meta.functional import (
    Pair,
    at,
    d_objective,
    draw_noise,
    g_objective,
)
from metaaug.meta.settings import Adversarial, Augment, OptimizerSpec
from metaaug.models.conditioning import conditioning
from metaaug.models.gan import GAN
from metaaug.precision import FP32, Precision


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
    labels: Tensor | None = None,
    groups: int = 1,
    precision: Precision = FP32,
) -> tuple[Tensor, Tensor]:
    """One round of D updates then G updates on a module pair; returns the last losses.

    The losses are the functional inner loop's own (`d_objective`, `g_objective`), evaluated
    on the modules' live parameters, so fine-tuning and meta-training share one definition.
    `labels` are the slot labels of `real` (None = all slot 0); `real` holds `groups` classes
    in equal consecutive blocks (DAGAN pairs images within a class). The modules' weights are
    the fp32 masters that the torch optimizers update; the networks compute on their casts to
    `precision` (gradients flow back through the cast into the fp32 `.grad`).
    """
    G, D = gan.generator, gan.discriminator
    pair = Pair(G, D, adv, augment, precision)
    cast = precision.cast_all
    real = precision.cast(real)
    noise = draw_noise(pair, 1, real.shape[0], real.shape[-1], rng, groups)
    noise = to_device(noise, real.device, real.dtype)
    g_live, d_live = dict(G.named_parameters()), dict(D.named_parameters())
    g_frozen = cast({k: v.detach() for k, v in g_live.items()})
    for k in range(adv.d_steps):
        # Update D: score real images high and generated ones low
        with precision.autocast():
            loss_d = d_objective(
                cast(d_live), g_frozen, pair, real, noise.z_d[0, k], noise.eps[0, k],
                at(noise.aug_real, 0, k), at(noise.aug_fake_d, 0, k),
                pair.conditioning.for_step(real, labels, noise.pick_d[0, k]),
            )  # fmt: skip
        opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        opt_d.step()
    # D's weights need no gradient in the G step; skipping them saves a third of its backward
    for p in d_live.values():
        p.requires_grad_(False)
    try:
        d_work = cast(d_live)
        for k in range(adv.g_steps):
            # Update G: make D score generated images as real
            with precision.autocast():
                loss_g = g_objective(
                    cast(g_live), d_work, pair, noise.z_g[0, k], at(noise.aug_fake_g, 0, k),
                    pair.conditioning.for_step(real, labels, noise.pick_g[0, k]),
                )  # fmt: skip
            opt_g.zero_grad(set_to_none=True)
            loss_g.backward()
            opt_g.step()
    finally:
        for p in d_live.values():
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
    precision: Precision = FP32,
) -> None:
    """Train `gan` in place on `images` (one class: slot 0 of a class-conditional pair) for
    `steps` rounds of D and G updates.

    Each round draws `batch_size` real images (all of them when None) and as many fakes.
    Optimizers are built here, so every adaptation starts from clean optimizer state.
    `on_step(step, loss_D, loss_G)` receives each round's losses (for logging). `precision`
    is the format the networks compute in (the modules keep their fp32 weights).
    """
    opt_g = optimizer.build(list(gan.generator.parameters()))
    opt_d = optimizer.build(list(gan.discriminator.parameters()))
    for step in range(steps):
        real = _real_batch(images, batch_size, rng)
        ld, lg = adversarial_step(gan, real, opt_g, opt_d, adv, rng, augment,
                                  precision=precision)  # fmt: skip
        if on_step is not None:
            on_step(step, float(ld), float(lg))


@torch.no_grad()
def sample(
    gan: GAN,
    n: int,
    rng: torch.Generator,
    batch_size: int = 256,
    shots: Tensor | None = None,
) -> Tensor:
    """`n` generated images on the CPU, in batches.

    A class-conditional generator draws slot 0 (the slot `adapt` trains); an image-conditioned
    one transforms the class's `shots` in turn (image i from shot i mod k).
    """
    kind = conditioning(gan.generator)
    if kind.needs_shots and (shots is None or shots.shape[0] == 0):
        raise ValueError("an image-conditioned generator needs the class's shots to sample")
    device = next(gan.parameters()).device
    out = []
    for start in range(0, n, batch_size):
        m = min(batch_size, n - start)
        z = gan.noise(m, rng)
        cond = kind.for_sampling(torch.arange(start, start + m), shots, device)
        x = gan.generator(z) if cond is None else gan.generator(z, cond)
        out.append(x.float().cpu())
    return torch.cat(out) if out else torch.empty(0)
