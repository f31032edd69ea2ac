"""Image-conditioned pair in the manner of DAGAN: G turns an image of a class into another image
of that class; D judges pairs of images.

Reference: A. Antoniou, A. Storkey, H. Edwards, "Data Augmentation Generative Adversarial
Networks", 2017. DAGAN's generator is a UResNet with noise injected at several decoder scales;
this one is a smaller U-Net on the DCGAN layer plan of `metaaug.models.gan` (4x4 stride-2
convolutions down, transposed convolutions up, a skip connection at every resolution) with z
injected once, at the bottleneck, as a projected feature map concatenated to the deepest
encoder features. The discriminator, as in DAGAN, sees a real image of the class next to a
second image, concatenated along channels: a real pair is two different real images of one
class, a fake pair is (x, G(z, x)).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from metaaug.models.conditioning import IMAGE
from metaaug.models.gan import DCGANDiscriminator, _norm, spatial_plan


class ImageConditionedGenerator(nn.Module):
    """(z, x) -> a new image of x's class, in [-1, 1], shaped like x."""

    conditioning = IMAGE  # what the loops feed it besides z (metaaug.models.conditioning)

    def __init__(
        self,
        channels: int,
        image_size: int,
        z_dim: int = 64,
        width: int = 32,
        norm: str = "layer",
    ) -> None:
        super().__init__()
        base, doublings = spatial_plan(image_size)
        self.z_dim = z_dim
        widths = [width * 2**i for i in range(doublings)]
        self.base, self.top = base, widths[-1]
        self.down = nn.ModuleList()
        c = channels
        for i, w in enumerate(widths):
            # state size: c x s x s -> w x s/2 x s/2 (no norm on the image itself)
            norm_layer = nn.Identity() if i == 0 else _norm(norm, w)
            self.down.append(nn.Sequential(nn.Conv2d(c, w, 4, 2, 1), norm_layer, nn.LeakyReLU(0.2)))
            c = w
        # state size: z_dim -> top x base x base, concatenated to the encoder's top x base x base
        self.project = nn.Linear(z_dim, self.top * base * base)
        self.project_norm = _norm(norm, self.top)
        self.up = nn.ModuleList()
        c = 2 * self.top
        for w in reversed(widths[:-1]):
            # state size: c x s x s -> w x 2s x 2s, then the encoder's w x 2s x 2s joins it
            self.up.append(
                nn.Sequential(nn.ConvTranspose2d(c, w, 4, 2, 1), _norm(norm, w), nn.ReLU())
            )
            c = 2 * w
        # state size: 2*width x size/2 x size/2 -> channels x size x size
        self.out = nn.Sequential(nn.ConvTranspose2d(c, channels, 4, 2, 1), nn.Tanh())

    def forward(self, z: Tensor, x: Tensor) -> Tensor:
        skips = []
        h = x
        for down in self.down:
            h = down(h)
            skips.append(h)
        return self.decode(z, skips)

    def decode(self, z: Tensor, skips: list[Tensor]) -> Tensor:
        """The decoder on the encoder's feature maps `skips` (largest first), z joining the
        deepest."""
        noise = self.project(z).view(z.shape[0], self.top, self.base, self.base)
        h = torch.cat([skips[-1], torch.relu(self.project_norm(noise))], dim=1)
        for up, skip in zip(self.up, reversed(skips[:-1]), strict=True):
            h = torch.cat([up(h), skip], dim=1)
        return self.out(h)


class PairDiscriminator(nn.Module):
    """(y, x) -> one unbounded score per pair: the DCGAN discriminator on [x, y] stacked along
    channels. High for two real images of one class, low for (G(z, x), x). The judged image
    comes first, the conditioning image second, as in every discriminator of the project."""

    def __init__(
        self,
        channels: int,
        image_size: int,
        width: int = 32,
        norm: str = "layer",
        spectral_norm: bool = False,
    ) -> None:
        super().__init__()
        self.body = DCGANDiscriminator(2 * channels, image_size, width, norm, spectral_norm)

    def forward(self, y: Tensor, x: Tensor) -> Tensor:
        return self.body(torch.cat([x, y], dim=1))
