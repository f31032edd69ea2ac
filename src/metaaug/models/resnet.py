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
from metaaug.models.figr import FIGRGenerator, figr_side, layer_norm
from metaaug.models.spectral import apply_spectral_norm


class Residual(nn.Module):
    """x + f(x), f = (3x3 conv, PReLU, LayerNorm) twice, on c x s x s features."""

    def __init__(self, c: int, s: int, norm: str) -> None:
        super().__init__()
        self.f = nn.Sequential(
            Conv2d(c, c, 3, padding=1),
            nn.PReLU(c),
            layer_norm(norm, (c, s, s)),
            Conv2d(c, c, 3, padding=1),
            nn.PReLU(c),
            layer_norm(norm, (c, s, s)),
        )

    def forward(self, x: Tensor) -> Tensor:
        return x + self.f(x)


def _transition(c_in: int, c_out: int, s: int, norm: str) -> list[nn.Module]:
    return [Conv2d(c_in, c_out, 3, padding=1), nn.PReLU(c_out), layer_norm(norm, (c_out, s, s))]


class ResNetGenerator(FIGRGenerator):
    """z -> image in [-1, 1]: FIGR's residual generator (its generator with two residual
    units and a 3x3 transition at each resolution)."""

    pair = "ResNet"

    @staticmethod
    def stage(c: int, s: int, norm: str) -> list[nn.Module]:
        return [Residual(c, s, norm), Residual(c, s, norm), *_transition(c, c // 2, s, norm)]


class ResNetDiscriminator(nn.Module):
    """Image -> one unbounded score: FIGR's residual critic."""

    def __init__(
        self,
        channels: int = 1,
        image_size: int = 32,
        width: int = 64,
        blocks: int = 4,
        spectral_norm: bool = False,
        norm: str = "layer",
    ) -> None:
        super().__init__()
        figr_side(image_size, blocks, "ResNet")
        c, s = width, image_size
        # state size: channels x size x size -> width x size x size
        layers: list[nn.Module] = [
            Conv2d(channels, c, 7, padding=3),
            nn.PReLU(c),
            layer_norm(norm, (c, s, s)),
        ]
        for _ in range(blocks):
            # state size: c x s x s -> 2c x s/2 x s/2
            layers += [Residual(c, s, norm), Residual(c, s, norm)]
            layers += _transition(c, 2 * c, s, norm)
            layers += [nn.AvgPool2d(2)]
            c, s = 2 * c, s // 2
        self.features = nn.Sequential(*layers)
        # state size: (width * 2**blocks) x s x s -> (global average) -> 1
        self.linear = nn.Linear(c, 1)
        if spectral_norm:
            apply_spectral_norm(self)

    def forward(self, x: Tensor) -> Tensor:
        return self.linear(self.features(x).mean(dim=(2, 3))).squeeze(1)
