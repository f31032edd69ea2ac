"""Classic augmentation of real images: random affine (rotate, translate, scale), flip, noise.

Applied per sample in one batched `grid_sample`, so it costs one kernel per batch inside the
GAN inner loop rather than a Python loop over images.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor


class ClassicAugment:
    """Callable `(images [N, C, H, W] in [-1, 1], rng) -> augmented images`.

    Arguments:
        rotate: maximum absolute rotation in degrees.
        translate: maximum shift as a fraction of the image side.
        scale: maximum relative zoom (0.1 -> factor in [0.9, 1.1]).
        hflip: probability of a horizontal flip (0 for characters, whose mirror image is
            another character).
        noise: standard deviation of added Gaussian pixel noise.
    """

    def __init__(
        self,
        rotate: float = 10.0,
        translate: float = 0.1,
        scale: float = 0.1,
        hflip: float = 0.0,
        noise: float = 0.0,
    ) -> None:
        self.rotate, self.translate, self.scale = rotate, translate, scale
        self.hflip, self.noise = hflip, noise

    def __call__(self, images: Tensor, rng: torch.Generator) -> Tensor:
        n = images.shape[0]

        def uniform(lo: float, hi: float) -> Tensor:
            return lo + (hi - lo) * torch.rand(n, generator=rng)

        angle = uniform(-self.rotate, self.rotate) * math.pi / 180
        zoom = uniform(1 - self.scale, 1 + self.scale)
        flip = torch.where(torch.rand(n, generator=rng) < self.hflip, -1.0, 1.0)
        shift = uniform(-self.translate, self.translate), uniform(-self.translate, self.translate)
        cos, sin = torch.cos(angle) / zoom, torch.sin(angle) / zoom
        # affine_grid maps output to input coordinates in [-1, 1]; a shift t of the side is 2t
        theta = torch.stack(
            [
                torch.stack([cos * flip, -sin, 2 * shift[0]], dim=1),
                torch.stack([sin * flip, cos, 2 * shift[1]], dim=1),
            ],
            dim=1,
        ).to(images)
        grid = F.affine_grid(theta, list(images.shape), align_corners=False)
        # pad with -1 (the background) rather than zeros (mid-grey)
        out = F.grid_sample(images + 1, grid, align_corners=False, padding_mode="zeros") - 1
        if self.noise > 0:
            out = out + self.noise * torch.randn(out.shape, generator=rng).to(out)
        return out.clamp(-1, 1)
