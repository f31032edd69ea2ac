"""Class-conditional pair for N-way tasks: a DCGAN generator fed z and a class code, and a
projection discriminator.

Labels are task-local slots (0..N-1 of an N-way task), not global classes: slot 0 is a
different class in every task. The class code is therefore a per-slot vector that is
meta-learned as part of the initialization and adapted in the inner loop like any weight.

Conditioning G: a learned class embedding concatenated to z, in front of the unchanged DCGAN
generator of `metaaug.models.gan`. Chosen over conditional LayerNorm affines because it leaves
the DCGAN body (and its `norm="none"` option) as it is and adds only num_classes x z_dim
weights; the per-sample LayerNorm cannot mix samples, so each image depends on its own label
only.

Conditioning D: the projection discriminator of T. Miyato, M. Koyama, "cGANs with Projection
Discriminator", ICLR 2018 (eq. 3): D(x, y) = w . phi(x) + b + <e_y, phi(x)>, with phi the
DCGAN discriminator's convolutional body and its flattened features.

Embeddings are Linear layers applied to one-hot labels rather than `nn.Embedding`: a matrix
product is plainly differentiable to any order under vmap, and `apply_spectral_norm` then
normalizes D's class embedding too, as Miyato & Koyama do. Labels must lie in
[0, num_classes): checking that would read the labels on the host, which vmap forbids, so a
label out of range silently gets a zero class code.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from metaaug.models.conditioning import CLASS
from metaaug.models.gan import DCGANGenerator, dcgan_features
from metaaug.models.spectral import apply_spectral_norm


def one_hot(labels: Tensor, num_classes: int, like: Tensor) -> Tensor:
    """int64 labels [N] -> [N, num_classes] in the dtype and device of `like`.

    By comparison rather than `F.one_hot`, whose range check reads label values on the host
    (a sync on CUDA, and an error under vmap inside grad).
    """
    classes = torch.arange(num_classes, device=labels.device)
    return (labels.unsqueeze(-1) == classes).to(like)


class ConditionalGenerator(nn.Module):
    """(z, labels) -> images in [-1, 1]; the DCGAN generator on [z, embed(label)]."""

    conditioning = CLASS  # what the loops feed it besides z (metaaug.models.conditioning)

    def __init__(
        self,
        z_dim: int,
        channels: int,
        image_size: int,
        num_classes: int,
        width: int = 32,
        norm: str = "layer",
    ) -> None:
        super().__init__()
        self.z_dim = z_dim
        self.num_classes = num_classes
        # a class code on the scale of z ~ N(0, 1), like nn.Embedding's default
        self.embed = nn.Linear(num_classes, z_dim, bias=False)
        nn.init.normal_(self.embed.weight)
        self.body = DCGANGenerator(2 * z_dim, channels, image_size, width, norm)

    def forward(self, z: Tensor, labels: Tensor) -> Tensor:
        code = self.embed(one_hot(labels, self.num_classes, z))
        return self.body(torch.cat([z, code], dim=1))


class ProjectionDiscriminator(nn.Module):
    """(images, labels) -> one unbounded score each: w . phi(x) + b + <embed(label), phi(x)>."""

    def __init__(
        self,
        channels: int,
        image_size: int,
        num_classes: int,
        width: int = 32,
        norm: str = "layer",
        spectral_norm: bool = False,
    ) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.features, dim = dcgan_features(channels, image_size, width, norm)
        self.linear = nn.Linear(dim, 1)
        self.embed = nn.Linear(num_classes, dim, bias=False)
        # Glorot, as in Miyato & Koyama's code: keeps <e_y, phi> on the scale of w . phi
        nn.init.xavier_uniform_(self.embed.weight)
        if spectral_norm:
            apply_spectral_norm(self)

    def forward(self, x: Tensor, labels: Tensor) -> Tensor:
        h = self.features(x)
        e = self.embed(one_hot(labels, self.num_classes, h))
        return self.linear(h).squeeze(1) + (e * h).sum(dim=1)
