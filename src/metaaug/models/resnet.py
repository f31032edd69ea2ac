"""FIGR's residual pair: FIGR's DCGAN pair with two residual units per resolution.

Reference: L. Clouâtre, M. Demers, "FIGR: Few-shot Image Generation with Reptile", 2019; the
authors' code (github.com/LuEE-C/FIGR, `model.py`, `ResNetGenerator`/`ResNetDiscriminator`):

- A residual unit is x + f(x), f = (3x3 conv -> PReLU -> LayerNorm) twice, channels kept.
- G: Linear(z, 16*width * s * s) -> PReLU -> LayerNorm, reshaped to 16*width x s x s with
  s = size / 2**blocks; then `blocks` times: two residual units, a 3x3 transition conv halving
  the channels -> PReLU -> LayerNorm, nearest 2x upsampling; then a 5x5 conv and tanh.
- D: 7x7 conv to `width` -> PReLU -> LayerNorm; then `blocks` times: two residual units, a 3x3
  transition conv doubling the channels -> PReLU -> LayerNorm, 2x2 average pooling; then a
  global average pool and one Linear.

Deviations from FIGR's code are the ones listed in `metaaug.models.figr` (names, [N] scores,
`nn.Upsample` for `F.upsample`, a UserError for sizes that are not a multiple of 2**blocks,
optional `norm="none"` and `spectral_norm`). Note the size at FIGR's defaults (width 64,
4 blocks): about 57M generator parameters, most of them in the 1024-channel units at 2 x 2.
"""

from __future__ import annotations

from torch import Tensor, nn

from metaaug.models.conv import Conv2d
from metaaug.models.figr import FIGRDiscriminator, FIGRGenerator, layer_norm


def _conv(c_in: int, c_out: int, s: int, norm: str, kernel: int = 3) -> list[nn.Module]:
    """kernel x kernel conv -> PReLU -> LayerNorm at side s: every convolution of the pair but
    G's last."""
    return [
        Conv2d(c_in, c_out, kernel, padding=kernel // 2),
        nn.PReLU(c_out),
        layer_norm(norm, (c_out, s, s)),
    ]


class Residual(nn.Module):
    """x + f(x), f = (3x3 conv, PReLU, LayerNorm) twice, on c x s x s features."""

    def __init__(self, c: int, s: int, norm: str) -> None:
        super().__init__()
        self.f = nn.Sequential(*_conv(c, c, s, norm), *_conv(c, c, s, norm))

    def forward(self, x: Tensor) -> Tensor:
        return x + self.f(x)


class ResNetGenerator(FIGRGenerator):
    """z -> image in [-1, 1]: FIGR's residual generator (its generator with two residual
    units and a 3x3 transition at each resolution)."""

    pair = "ResNet"

    @staticmethod
    def stage(c: int, s: int, norm: str) -> list[nn.Module]:
        return [Residual(c, s, norm), Residual(c, s, norm), *_conv(c, c // 2, s, norm)]


class ResNetDiscriminator(FIGRDiscriminator):
    """Image -> one unbounded score: FIGR's residual critic (its critic with two residual units
    before each 3x3 transition, a 7x7 first layer and a global average pool)."""

    pair = "ResNet"

    @staticmethod
    def stem(channels: int, c: int, s: int, norm: str) -> list[nn.Module]:
        return _conv(channels, c, s, norm, kernel=7)

    @staticmethod
    def stage(c: int, s: int, norm: str) -> list[nn.Module]:
        return [Residual(c, s, norm), Residual(c, s, norm), *_conv(c, 2 * c, s, norm)]

    def head(self, layers: list[nn.Module], c: int, s: int) -> None:
        self.features = nn.Sequential(*layers)
        # state size: (width * 2**blocks) x s x s -> (global average) -> 1
        self.linear = nn.Linear(c, 1)

    def forward(self, x: Tensor) -> Tensor:
        return self.linear(self.features(x).mean(dim=(2, 3))).squeeze(1)
