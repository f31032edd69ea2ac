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

    def sample_params(
        self, n: int, generator: torch.Generator, image_size: int | None = None
    ) -> dict[str, Tensor]:
        """Every random draw for `n` images (so `apply` is pure and batches under vmap)."""

        def uniform(lo: float, hi: float) -> Tensor:
            return lo + (hi - lo) * torch.rand(n, generator=generator)

        return {
            "angle": uniform(-self.rotate, self.rotate) * math.pi / 180,
            "zoom": uniform(1 - self.scale, 1 + self.scale),
            "flip": torch.where(torch.rand(n, generator=generator) < self.hflip, -1.0, 1.0),
            "shift_x": uniform(-self.translate, self.translate),
            "shift_y": uniform(-self.translate, self.translate),
            # one noise image per sample, shared by its channels
            "pixel_noise": torch.randn(n, 1, image_size or 1, image_size or 1, generator=generator),
        }

    def apply(self, images: Tensor, params: dict[str, Tensor]) -> Tensor:
        """The augmentation given its draws: pure and differentiable in `images`."""
        p = {k: v.to(images) for k, v in params.items()}
        cos, sin = torch.cos(p["angle"]) / p["zoom"], torch.sin(p["angle"]) / p["zoom"]
        # affine_grid maps output to input coordinates in [-1, 1]; a shift t of the side is 2t
        theta = torch.stack(
            [
                torch.stack([cos * p["flip"], -sin, 2 * p["shift_x"]], dim=-1),
                torch.stack([sin * p["flip"], cos, 2 * p["shift_y"]], dim=-1),
            ],
            dim=-2,
        )
        grid = _affine_grid(theta, images.shape[-2], images.shape[-1])
        # pad with -1 (the background) rather than zeros (mid-grey)
        out = F.grid_sample(images + 1, grid, align_corners=False, padding_mode="zeros") - 1
        if self.noise > 0:
            out = out + self.noise * p["pixel_noise"]
        return out.clamp(-1, 1)

    def __call__(self, images: Tensor, rng: torch.Generator) -> Tensor:
        return self.apply(images, self.sample_params(images.shape[0], rng, images.shape[-1]))


def _affine_grid(theta: Tensor, height: int, width: int) -> Tensor:
    """F.affine_grid(theta, align_corners=False) as one matmul: vmap has no batching rule for
    affine_grid, and this is all it computes."""
    ys = torch.linspace(-1 + 1 / height, 1 - 1 / height, height, dtype=theta.dtype)
    xs = torch.linspace(-1 + 1 / width, 1 - 1 / width, width, dtype=theta.dtype)
    gy, gx = torch.meshgrid(ys.to(theta.device), xs.to(theta.device), indexing="ij")
    base = torch.stack([gx, gy, torch.ones_like(gx)], dim=-1)  # [H, W, 3] as (x, y, 1)
    return torch.einsum("hwk,...ik->...hwi", base, theta)  # [..., H, W, 2]
