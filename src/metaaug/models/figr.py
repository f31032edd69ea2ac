"""FIGR's own DCGAN pair, for faithful reproductions of FIGR.

Reference: L. Clouâtre, M. Demers, "FIGR: Few-shot Image Generation with Reptile", 2019;
architecture as in the authors' code (github.com/LuEE-C/FIGR, `model.py`,
`DCGANGenerator`/`DCGANDiscriminator`):

- G: Linear(z, 16*width * s * s) -> PReLU (one slope per feature) -> LayerNorm over all of it,
  reshaped to 16*width x s x s with s = size / 2**blocks; then `blocks` times: 5x5 conv halving
  the channels -> PReLU -> LayerNorm over (C, H, W) -> nearest 2x upsampling; then a 5x5 conv
  to the image channels and tanh. z of 100, width ("hidden size") 64, 4 blocks, 32 x 32.
- D: 5x5 conv to `width` -> LayerNorm -> PReLU at full size; then `blocks` times: 5x5 conv
  doubling the channels -> LayerNorm -> PReLU -> 2x2 average pooling; then one Linear over the
  flattened features. (G applies PReLU before LayerNorm, D after; both orders are FIGR's.)
- LayerNorm is `nn.LayerNorm([C, H, W])` with an affine weight per position, as in FIGR; no
  BatchNorm anywhere.

Deviations, and why:
- Argument names follow this project (`z_dim`, `channels`, `image_size`, `width`) instead of
  (`input_size`, `image_channels`, `height`, `length`, `hidden_size`); images are square.
- D returns shape [N] rather than [N, 1], as every discriminator here does.
- `F.upsample` (deprecated) is `nn.Upsample(scale_factor=2, mode="nearest")`: the same op.
- Sizes that are not a multiple of 2**blocks raise a UserError; FIGR's integer division would
  build mismatched layers and fail at the first forward.
- Additions that default to FIGR's behaviour: `norm="none"` drops the LayerNorms (an
  ablation), `spectral_norm=True` normalizes D's convolutions and Linear.
- FIGR's gradient penalty (norm over channels only) is not part of the modules; see
  `metaaug.gan.losses.gp_of_grads`.
"""

from __future__ import annotations

from torch import Tensor, nn

from metaaug.errors import BadValue
from metaaug.models.conv import Conv2d
from metaaug.models.spectral import apply_spectral_norm


def figr_side(image_size: int, blocks: int, pair: str = "FIGR") -> int:
    """Side of the smallest feature map, image_size / 2**blocks, which must be whole."""
    step = 2**blocks
    if blocks < 1 or image_size < step or image_size % step:
        raise BadValue(
            f"{{image_size}}={image_size} is not supported by the {pair} pair with "
            f"{{blocks}}={blocks}; use a multiple of 2**blocks (with {blocks} blocks: "
            f"{step}, {2 * step}, {4 * step}, ...) or fewer blocks"
        )
    return image_size // step


def layer_norm(kind: str, shape: int | tuple[int, ...]) -> nn.Module:
    """FIGR's LayerNorm over all of a sample's features (affine per feature), or none."""
    if kind == "layer":
        return nn.LayerNorm(shape)
    if kind == "none":
        return nn.Identity()
    raise BadValue(f"{{norm}}={kind!r} is not known; use 'layer' or 'none'")


class FIGRGenerator(nn.Module):
    """z -> image in [-1, 1]: FIGR's generator (5x5 convolutions, PReLU, LayerNorm)."""

    pair = "FIGR"  # the name a refused image size is reported with

    def __init__(
        self,
        z_dim: int = 100,
        channels: int = 1,
        image_size: int = 32,
        width: int = 64,
        blocks: int = 4,
        norm: str = "layer",
    ) -> None:
        super().__init__()
        s = figr_side(image_size, blocks, self.pair)
        self.z_dim = z_dim
        c = width * 2**blocks
        self.top, self.side = c, s
        flat = c * s * s
        # state size: z_dim -> (width * 2**blocks) x s x s
        self.project = nn.Sequential(nn.Linear(z_dim, flat), nn.PReLU(flat), layer_norm(norm, flat))
        layers: list[nn.Module] = []
        for _ in range(blocks):
            # state size: c x s x s -> c/2 x 2s x 2s
            layers += [*self.stage(c, s, norm), nn.Upsample(scale_factor=2, mode="nearest")]
            c, s = c // 2, s * 2
        # state size: width x size x size -> channels x size x size
        layers += [Conv2d(c, channels, 5, padding=2), nn.Tanh()]
        self.body = nn.Sequential(*layers)

    @staticmethod
    def stage(c: int, s: int, norm: str) -> list[nn.Module]:
        """One resolution's layers before the upsampling, halving the c channels at side s."""
        return [Conv2d(c, c // 2, 5, padding=2), nn.PReLU(c // 2), layer_norm(norm, (c // 2, s, s))]

    def forward(self, z: Tensor) -> Tensor:
        h = self.project(z).view(z.shape[0], self.top, self.side, self.side)
        return self.body(h)


class FIGRDiscriminator(nn.Module):
    """Image -> one unbounded score: FIGR's critic (5x5 convolutions, LayerNorm, PReLU)."""

    pair = "FIGR"  # the name a refused image size is reported with

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
        figr_side(image_size, blocks, self.pair)
        c, s = width, image_size
        # state size: channels x size x size -> width x size x size
        layers = self.stem(channels, c, s, norm)
        for _ in range(blocks):
            # state size: c x s x s -> 2c x s/2 x s/2 (the stage at s, then average pooling)
            layers += [*self.stage(c, s, norm), nn.AvgPool2d(2)]
            c, s = 2 * c, s // 2
        # state size: (width * 2**blocks) x s x s -> 1
        self.head(layers, c, s)
        if spectral_norm:
            apply_spectral_norm(self)

    @staticmethod
    def stem(channels: int, c: int, s: int, norm: str) -> list[nn.Module]:
        """The layers at full size that take the image's channels to c."""
        return [Conv2d(channels, c, 5, padding=2), layer_norm(norm, (c, s, s)), nn.PReLU(c)]

    @staticmethod
    def stage(c: int, s: int, norm: str) -> list[nn.Module]:
        """One resolution's layers before the pooling, doubling the c channels at side s."""
        return [Conv2d(c, 2 * c, 5, padding=2), layer_norm(norm, (2 * c, s, s)), nn.PReLU(2 * c)]

    def head(self, layers: list[nn.Module], c: int, s: int) -> None:
        """Registers `layers` and the score on their c x s x s output (the state dict's names)."""
        self.net = nn.Sequential(*layers, nn.Flatten(), nn.Linear(c * s * s, 1))

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x).squeeze(1)
