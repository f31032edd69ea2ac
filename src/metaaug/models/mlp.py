"""Fully connected generator and discriminator: the cheapest pair, any image size.

Each hidden layer is Linear -> LayerNorm (or none) -> LeakyReLU(0.2); `layers` counts the
hidden layers, all `hidden` wide. LayerNorm normalizes each sample over its features, so the
pair keeps no batch or running statistics, as the meta-learned path requires.
"""

from __future__ import annotations

from torch import Tensor, nn

from metaaug.errors import BadValue
from metaaug.models.spectral import apply_spectral_norm


def _hidden_layers(n_in: int, hidden: int, layers: int, norm: str) -> list[nn.Module]:
    if layers < 1:
        raise BadValue(f"{{layers}}={layers} is not supported; use at least 1 hidden layer")
    if norm not in ("layer", "none"):
        raise BadValue(f"{{norm}}={norm!r} is not known; use 'layer' or 'none'")
    out: list[nn.Module] = []
    for i in range(layers):
        out += [
            nn.Linear(n_in if i == 0 else hidden, hidden),
            nn.LayerNorm(hidden) if norm == "layer" else nn.Identity(),
            nn.LeakyReLU(0.2),
        ]
    return out


class MLPGenerator(nn.Module):
    """z -> image in [-1, 1] through `layers` hidden layers of `hidden` units."""

    def __init__(
        self,
        z_dim: int,
        channels: int,
        image_size: int,
        hidden: int = 256,
        layers: int = 3,
        norm: str = "layer",
    ) -> None:
        super().__init__()
        self.z_dim = z_dim
        self.shape = (channels, image_size, image_size)
        # state size: z_dim -> hidden -> ... -> channels * size * size
        self.net = nn.Sequential(
            *_hidden_layers(z_dim, hidden, layers, norm),
            nn.Linear(hidden, channels * image_size * image_size),
            nn.Tanh(),
        )

    def forward(self, z: Tensor) -> Tensor:
        return self.net(z).view(z.shape[0], *self.shape)


class MLPDiscriminator(nn.Module):
    """Image -> one unbounded score through `layers` hidden layers of `hidden` units."""

    def __init__(
        self,
        channels: int,
        image_size: int,
        hidden: int = 256,
        layers: int = 3,
        spectral_norm: bool = False,
        norm: str = "layer",
    ) -> None:
        super().__init__()
        # state size: channels * size * size -> hidden -> ... -> 1
        self.net = nn.Sequential(
            nn.Flatten(),
            *_hidden_layers(channels * image_size * image_size, hidden, layers, norm),
            nn.Linear(hidden, 1),
        )
        if spectral_norm:
            apply_spectral_norm(self)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x).squeeze(1)
