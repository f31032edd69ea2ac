"""A small CNN over the domain's own classes: the feature extractor of the domain metric.

FID with Inception-v3 features on 28x28 grayscale drawings is widely considered meaningless, so
the default metric uses the penultimate features (and the softmax) of this network, trained on
meta-train classes only, the "LeNet FID" of the few-shot generation literature.
"""

from __future__ import annotations

import math

from torch import Tensor, nn

from metaaug.errors import UserError

# Three stride-2 poolings: below 8 pixels the last block would see a 0x0 map.
MIN_IMAGE_SIZE = 8


def _block(in_ch: int, out_ch: int) -> nn.Sequential:
    # GroupNorm instead of BatchNorm: the features of one image do not depend on which other
    # images share its batch, and train and eval mode compute the same function. Pooling before
    # the norm and the ReLU runs them on a quarter of the pixels: about 2x faster on CPU.
    return nn.Sequential(
        nn.Conv2d(in_ch, out_ch, kernel_size=3, padding=1, bias=False),
        nn.MaxPool2d(2, ceil_mode=True),
        nn.GroupNorm(math.gcd(8, out_ch), out_ch),  # the group count must divide out_ch
        nn.ReLU(inplace=True),
    )


class DomainClassifier(nn.Module):
    """Conv(width) -> Conv(width) -> Conv(2 width) -> global average pool -> feature_dim -> logits.

    The channel widths stay small on purpose: the classifier is trained once per dataset and
    split on CPU, on 1,000-2,000 images, in a few seconds. Global average pooling makes the
    network size-agnostic, but `DomainFeatures` only accepts images of `image_size`, because
    features of a different resolution are not comparable.

    Arguments:
        channels: image channels (1 or 3).
        image_size: side of the square training images (>= 8).
        num_classes: number of (meta-train) classes of the head.
        width: channels of the first two conv blocks; the third has twice as many.
        feature_dim: size of the penultimate layer, the features of FID/KID.
    """

    def __init__(
        self,
        channels: int,
        image_size: int,
        num_classes: int,
        width: int = 32,
        feature_dim: int = 64,
    ) -> None:
        super().__init__()
        if image_size < MIN_IMAGE_SIZE:
            raise UserError(
                f"the domain classifier needs images of at least {MIN_IMAGE_SIZE}x"
                f"{MIN_IMAGE_SIZE}, got {image_size}; set dataset.image_size to 16 or more"
            )
        if num_classes < 2:
            raise UserError(
                f"the domain classifier needs at least 2 classes, got {num_classes}; "
                "use more meta-train classes or metric=inception"
            )
        self.channels = channels
        self.image_size = image_size
        self.num_classes = num_classes
        self.width = width
        self.feature_dim = feature_dim
        self.body = nn.Sequential(
            _block(channels, width),  # width x S/2 x S/2
            _block(width, width),  # width x S/4 x S/4
            _block(width, 2 * width),  # 2 width x S/8 x S/8
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),  # 2 width
            nn.Linear(2 * width, feature_dim),
            nn.ReLU(inplace=True),  # feature_dim: the penultimate features
        )
        self.head = nn.Linear(feature_dim, num_classes)

    def features(self, x: Tensor) -> Tensor:
        """Penultimate features [N, feature_dim] of images [N, C, H, W] in [-1, 1]."""
        return self.body(x)

    def forward(self, x: Tensor) -> Tensor:
        """Class logits [N, num_classes]."""
        return self.head(self.body(x))

    def config(self) -> dict[str, int]:
        """Constructor arguments, to rebuild the network from a checkpoint."""
        names = ("channels", "image_size", "num_classes", "width", "feature_dim")
        return {name: getattr(self, name) for name in names}
