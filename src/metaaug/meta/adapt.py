"""Adapt a generator/discriminator pair (modules) to a handful of images, and sample it.

The fine-tune on the target shots, validation during meta-training and pretrain's updates run
the functional inner round of `metaaug.meta.inner` (the one meta-training runs) on the
modules' own parameters, with torch's fused optimizer updating them in place
(`InPlaceOptimizer`): one definition of a round for every GAN loop, so an initialization is
always judged by the procedure it was trained for.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from metaaug.meta.batching import to_device
from metaaug.meta.functional import Pair, Params, draw_noise
from metaaug.meta.inner import LoopState, inner_round, start
from metaaug.meta.optimizers import InPlaceOptimizer
from metaaug.meta.settings import Adversarial, Augment, OptimizerSpec
from metaaug.models.conditioning import conditioning
from metaaug.models.gan import GAN
from metaaug.precision import FP32, Precision


def _real_batch(images: Tensor, batch_size: int | None, rng: torch.Generator) -> Tensor:
    if batch_size is None or batch_size >= images.shape[0]:
        return images
    idx = torch.randperm(images.shape[0], generator=rng)[:batch_size]
    return images[idx.to(images.device)]


def masters(module: nn.Module) -> Params:
    """A module's parameters as the loop's fp32 masters: detached views of the same storage,
    so the in-place optimizer updates the module itself."""
    return {k: v.detach() for k, v in module.named_parameters()}


def module_state(
    pair: Pair, opt_g: torch.optim.Optimizer, opt_d: torch.optim.Optimizer
) -> LoopState:
    """The loop state of `pair`'s modules as they are now (working copies cast afresh, so
    weights loaded into the modules between rounds are seen) with the optimizers' states."""
    g, d = masters(pair.generator), masters(pair.discriminator)
    cast = pair.precision.cast_all
    return LoopState(g, d, cast(g), cast(d), opt_g, opt_d)


def module_round(
    pair: Pair,
    optimizer: InPlaceOptimizer,
    state: LoopState,
    real: Tensor,
    rng: torch.Generator,
    labels: Tensor | None = None,
    groups: int = 1,
    own: Tensor | None = None,
) -> tuple[LoopState, Tensor, Tensor]:
    """One round of D updates then G updates on the modules: draws the round's noise from
    `rng`, then runs `inner_round`. `labels` are the slot labels of `real` (None = all slot
    0), `own` their rows of the class term's bank; `real` holds `groups` classes in equal
    consecutive blocks (DAGAN pairs images within a class). Returns the new state and the
    last D and G losses."""
    real = pair.precision.cast(real)
    noise = draw_noise(pair, 1, real.shape[0], real.shape[-1], rng, groups)
    noise = to_device(noise, real.device, real.dtype)
    with pair.precision.autocast():
        state, losses_d, losses_g = inner_round(pair, optimizer, state, real, noise, labels, own)
    return state, losses_d[-1], losses_g[-1]


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
    pair = Pair(gan.generator, gan.discriminator, adv, augment, precision)
    opt = InPlaceOptimizer(optimizer)
    state = start(pair, opt, masters(gan.generator), masters(gan.discriminator))
    for step in range(steps):
        real = _real_batch(images, batch_size, rng)
        state, ld, lg = module_round(pair, opt, state, real, rng)
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
    for begin in range(0, n, batch_size):
        m = min(batch_size, n - begin)
        z = gan.noise(m, rng)
        cond = kind.for_sampling(torch.arange(begin, begin + m), shots, device)
        x = gan.generator(z) if cond is None else gan.generator(z, cond)
        out.append(x.float().cpu())
    if not out:  # n == 0: two images (BatchNorm needs more than one) give the shape
        return sample(gan, 2, rng, 2, shots)[:0]
    return torch.cat(out)
