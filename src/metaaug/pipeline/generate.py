"""Stage: draw the synthetic images of an adapted GAN, and the copy-the-shots reference."""

from __future__ import annotations

import math

from torch import Tensor

from metaaug import hardware
from metaaug.data.target import Target
from metaaug.meta.adapt import sample
from metaaug.models.gan import GAN


def noise_seed(seed: int) -> int:
    """The seed of the generation noise of a run with `seed`: the same for every arm, step and
    target, so that grids compare image for image."""
    return int(seed) + 2


def generate(gan: GAN, target: Target, num_images: int, batch_size: int, seed: int) -> Tensor:
    """`num_images` images of `gan` (adapted to `target`) on the CPU, drawn with the noise of
    a run with `seed`."""
    return sample(gan, num_images, hardware.generator(noise_seed(seed)), batch_size, target.shots)


def copies(target: Target, n: int) -> Tensor:
    """`n` images that copy the shots in turn: what a GAN that memorizes would match (FID
    against held-out drawings rewards copying)."""
    k = target.shots.shape[0]
    return target.shots.cpu().repeat(math.ceil(n / k), 1, 1, 1)[:n]
