"""DCGAN-style generator and discriminator for the meta-learned path.

No BatchNorm anywhere: a meta-learned initialization is adapted on four or five images, and
batch statistics over so few images (or running statistics carried across tasks) break both
Reptile's weight interpolation and torch.func's pure per-task functions. As in FIGR, the
normalization is LayerNorm (GroupNorm with one group: statistics per sample over C, H, W) or
none.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from metaaug.errors import BadValue
from metaaug.models.spectral import apply_spectral_norm


def spatial_plan(image_size: int) -> tuple[int, int]:
    """(base, doublings): the image is `base` x `base` doubled `doublings` times.

    28 = 7 * 2**2 covers MNIST-like sizes; 16, 32, 64, ... = 4 * 2**k cover the rest.
    """
    for base in (4, 7):
        ratio = image_size / base
        if ratio >= 4 and ratio == int(ratio) and math.log2(ratio).is_integer():
            return base, int(math.log2(ratio))
    raise BadValue(
        f"{{image_size}}={image_size} is not supported by the DCGAN pair; "
        "use one of 16, 28, 32, 64 (4 or 7 times a power of two, at least 16)"
    )


def _norm(kind: str, channels: int) -> nn.Module:
    if kind == "layer":
        return nn.GroupNorm(1, channels)
    if kind == "none":
        return nn.Identity()
    raise BadValue(f"{{norm}}={kind!r} is not known; use 'layer' or 'none'")


def dcgan_features(
    channels: int, image_size: int, width: int, norm: str
) -> tuple[nn.Sequential, int]:
    """The DCGAN discriminator's body, ending in a flattened feature vector, and its size."""
    base, doublings = spatial_plan(image_size)
    # state size: channels x size x size -> width x size/2 x size/2 (no norm on the input)
    layers: list[nn.Module] = [nn.Conv2d(channels, width, 4, 2, 1), nn.LeakyReLU(0.2)]
    c = width
    for _ in range(doublings - 1):
        # state size: c x s x s -> 2c x s/2 x s/2
        layers += [nn.Conv2d(c, c * 2, 4, 2, 1), _norm(norm, c * 2), nn.LeakyReLU(0.2)]
        c *= 2
    # state size: c x base x base -> c * base * base
    layers += [nn.Flatten()]
    return nn.Sequential(*layers), c * base * base


class DCGANGenerator(nn.Module):
    """z -> image in [-1, 1]; transposed convolutions double the size from base x base."""

    def __init__(
        self, z_dim: int, channels: int, image_size: int, width: int = 32, norm: str = "layer"
    ) -> None:
        super().__init__()
        base, doublings = spatial_plan(image_size)
        self.z_dim = z_dim
        top = width * 2 ** (doublings - 1)
        self.base, self.top = base, top
        # state size: z_dim -> top x base x base
        self.project = nn.Linear(z_dim, top * base * base)
        self.project_norm = _norm(norm, top)
        blocks: list[nn.Module] = []
        c = top
        for _ in range(doublings - 1):
            # state size: c x s x s -> c/2 x 2s x 2s
            blocks += [nn.ConvTranspose2d(c, c // 2, 4, 2, 1), _norm(norm, c // 2), nn.ReLU()]
            c //= 2
        # state size: width x (size/2) x (size/2) -> channels x size x size
        blocks += [nn.ConvTranspose2d(c, channels, 4, 2, 1), nn.Tanh()]
        self.blocks = nn.Sequential(*blocks)

    def forward(self, z: Tensor) -> Tensor:
        h = self.project(z).view(z.shape[0], self.top, self.base, self.base)
        return self.blocks(torch.relu(self.project_norm(h)))


class DCGANDiscriminator(nn.Module):
    """Image -> one unbounded score (a logit for nonsat, a critic value for WGAN-GP)."""

    def __init__(
        self,
        channels: int,
        image_size: int,
        width: int = 32,
        norm: str = "layer",
        spectral_norm: bool = False,
    ) -> None:
        super().__init__()
        body, dim = dcgan_features(channels, image_size, width, norm)
        # state size: features -> 1
        self.net = nn.Sequential(*body, nn.Linear(dim, 1))
        if spectral_norm:
            apply_spectral_norm(self)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x).squeeze(1)


class GAN(nn.Module):
    """A generator and its discriminator: the unit that is meta-learned and checkpointed."""

    def __init__(self, generator: nn.Module, discriminator: nn.Module) -> None:
        super().__init__()
        self.generator = generator
        self.discriminator = discriminator

    @property
    def z_dim(self) -> int:
        return int(self.generator.z_dim)

    def noise(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        device = next(self.parameters()).device
        z = torch.randn(n, self.z_dim, generator=generator)
        return z.to(device)
