"""Stage: draw the synthetic images of an adapted GAN, and the copy-the-shots reference."""

from __future__ import annotations

import math

from omegaconf import DictConfig
from torch import Tensor

from metaaug import hardware
from metaaug.data.target import Target
from metaaug.meta.adapt import sample
from metaaug.models.gan import GAN


def noise_seed(cfg: DictConfig) -> int:
    """The seed of the generation noise: the same for every arm, step and target, so that
    grids compare image for image."""
    return int(cfg.seed) + 2


def generate(gan: GAN, target: Target, cfg: DictConfig) -> Tensor:
    """`generate.num_images` images of `gan` (adapted to `target`) on the CPU."""
    return sample(
        gan,
        int(cfg.generate.num_images),
        hardware.generator(noise_seed(cfg)),
        int(cfg.generate.batch_size),
        target.shots,
    )


def copies(target: Target, n: int) -> Tensor:
    """`n` images that copy the shots in turn: what a GAN that memorizes would match (FID
    against held-out drawings rewards copying)."""
    k = target.shots.shape[0]
    return target.shots.cpu().repeat(math.ceil(n / k), 1, 1, 1)[:n]
