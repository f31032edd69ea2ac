"""Set-fusion pair in the manner of F2GAN and LoFGAN (`gan=fusion`): G reads all k shots of a
class at once and makes a new image of the class with no fine-tune.

G encodes each shot with the U-Net encoder of `metaaug.models.dagan`, fuses the k feature maps
of every resolution with random convex weights (one weight per shot: the global fusion of
F2GAN), and decodes the fused maps with z injected at the bottleneck. The weights come from
the noise itself, softmax(z[:k]), so a generated image stays a pure function of (z, shots),
drawn up front like every random number of the loops. D judges an image beside the mean of
its class's set (the pair discriminator of DAGAN with the set's mean as the second image);
`gan.class_loss` adds the class term (`metaaug.gan.class_loss`).

References: Hong et al. 2020, "F2GAN: Fusing-and-Filling GAN for Few-shot Image Generation";
Gu et al. 2021, "LoFGAN: Fusing Local Representations for Few-shot Image Generation" (which
fuses per location; this one fuses globally).
"""

from __future__ import annotations

import torch
from torch import Tensor

from metaaug.errors import UserError
from metaaug.models.conditioning import SET
from metaaug.models.dagan import ImageConditionedGenerator, PairDiscriminator


def fusion_weights(z: Tensor, k: int) -> Tensor:
    """Random convex weights [n, k] of each image's k shots, from its noise vector."""
    if k > z.shape[1]:
        raise UserError(
            f"gan=fusion fuses up to gan.z_dim={z.shape[1]} shots from its noise, but got {k}; "
            "raise gan.z_dim or use fewer shots"
        )
    return torch.softmax(z[:, :k], dim=1)


class FusionGenerator(ImageConditionedGenerator):
    """(z, sets [n, k, C, H, W]) -> a new image of each set's class, in [-1, 1]."""

    conditioning = SET

    def forward(self, z: Tensor, x: Tensor) -> Tensor:  # x: the sets
        n, k = x.shape[:2]
        alpha = fusion_weights(z, k).to(x.dtype)
        h = x.flatten(0, 1)
        fused = []
        for down in self.down:
            h = down(h)
            per_shot = h.view(n, k, *h.shape[1:])
            fused.append(torch.einsum("nk,nk...->n...", alpha, per_shot))
        return self.decode(z, fused)


class SetDiscriminator(PairDiscriminator):
    """(y, sets [n, k, C, H, W]) -> one score per image: the pair discriminator on y beside the
    mean image of its set."""

    def forward(self, y: Tensor, x: Tensor) -> Tensor:
        return super().forward(y, x.mean(1))
