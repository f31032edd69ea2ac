"""Every metric of one set of generated images against real images of their class, with the
reason for each that cannot be measured: what `metaaug evaluate` and `metaaug.api.evaluate`
report per class."""

from __future__ import annotations

import math
from collections.abc import Callable

from torch import Tensor

from metaaug.metrics.image_metrics import image_metrics
from metaaug.metrics.precision_recall import precision_recall

Extract = Callable[[Tensor], tuple[Tensor, Tensor]]
NAN = float("nan")


class CachedFeatures:
    """An extractor that computes each image tensor's features once: the metrics of one class
    ask for the same real and fake features several times, and Inception is slow on a CPU."""

    def __init__(self, extract: Extract) -> None:
        self.extract = extract
        self._seen: dict[int, tuple[Tensor, tuple[Tensor, Tensor]]] = {}

    def __call__(self, images: Tensor) -> tuple[Tensor, Tensor]:
        key = id(images)
        if key not in self._seen:  # the tensor is kept, so its id is not reused meanwhile
            self._seen[key] = (images, self.extract(images))
        return self._seen[key][1]


def measure(
    extract: Extract,
    fake: Tensor,
    real: Tensor,
    shots: Tensor | None = None,
    *,
    k: int = 3,
    kid_subset_size: int = 100,
    kid_subsets: int = 50,
    seed: int = 0,
    of_class: Tensor | None = None,
) -> tuple[dict[str, float], dict[str, str]]:
    """FID, KID, IS, precision and recall (`k` nearest neighbours), memorization (with the
    `shots` the generator adapted to) and diversity of `fake` against `real`, all [N, C, H, W]
    in [-1, 1]; and metric -> why it is nan.

    `real` must not hold the shots: it is the held-out reference, and memorization compares
    the fakes' distance to the shots with the real images' distance to them. `of_class` (which
    fakes the fidelity classifier assigns to the class) gives `novel_fidelity`.
    """
    cached = CachedFeatures(extract)
    empty = fake.new_zeros((0, *fake.shape[1:]))
    metrics = image_metrics(
        cached, fake, real, shots if shots is not None else empty,
        kid_subset_size=kid_subset_size, kid_subsets=kid_subsets, seed=seed, of_class=of_class,
    )  # fmt: skip
    unavailable: dict[str, str] = {}
    n_fake, n_real = len(fake), len(real)
    if n_fake < 2 or n_real < 2:
        reason = f"needs at least 2 real and 2 fake images ({n_real} and {n_fake})"
        unavailable |= dict.fromkeys(("fid", "kid"), reason)
    metrics["precision"] = metrics["recall"] = NAN
    if min(n_fake, n_real) > k:
        real_feats, fake_feats = cached(real)[0], cached(fake)[0]
        metrics["precision"], metrics["recall"] = precision_recall(real_feats, fake_feats, k)
    else:
        reason = f"needs more than k={k} real and fake images ({n_real} and {n_fake})"
        unavailable["precision"] = unavailable["recall"] = reason
    if shots is None or len(shots) == 0:
        reason = ("no shots given: memorization and copies compare the fakes with the images "
                  "the generator adapted to (shots=DIR)")  # fmt: skip
    elif math.isnan(metrics["memorization"]):
        reason = f"needs a fake image and at least 2 real images ({n_fake} and {n_real})"
    else:
        reason = None
    if reason:
        unavailable |= dict.fromkeys(("memorization", "copies", "novel_fidelity"), reason)
    return metrics, unavailable
