"""Improved precision and recall of generated images (Kynkäänniemi et al. 2019) on features.

FID and KID fold two failures into one number: samples that look wrong (low precision) and
a generator that covers only part of the real images (low recall). Here each set estimates
its own manifold as the union of hyperspheres around its points, each with the radius of the
distance to its k-th nearest neighbour in the set:

    precision = share of fakes inside the real manifold
    recall    = share of reals inside the fake manifold

A generator that copies its few shots has high precision and low recall.
"""

from __future__ import annotations

import torch
from torch import Tensor

from metaaug.metrics.fid import _as_f64, _check_same_dim, exact_cdist


def knn_radii(feats: Tensor, k: int = 3, chunk_size: int = 1024) -> Tensor:
    """Distance from each row to its k-th nearest other row of `feats` [N, D] (N > k)."""
    x = _as_f64(feats, "feats", min_rows=k + 1)
    radii = []
    for start in range(0, len(x), chunk_size):
        dist = exact_cdist(x[start : start + chunk_size], x)
        # the k+1 smallest include the row itself at distance 0
        radii.append(dist.topk(k + 1, dim=1, largest=False).values[:, k])
    return torch.cat(radii)


def _coverage(queries: Tensor, points: Tensor, radii: Tensor, chunk_size: int) -> float:
    """Share of `queries` within radii[j] of some points[j]."""
    inside = 0
    for start in range(0, len(queries), chunk_size):
        dist = exact_cdist(queries[start : start + chunk_size], points)
        inside += int((dist <= radii.unsqueeze(0)).any(dim=1).sum())
    return inside / len(queries)


def precision_recall(
    real_feats: Tensor, fake_feats: Tensor, k: int = 3, chunk_size: int = 1024
) -> tuple[float, float]:
    """(precision, recall) of fake features against real features, both [N, D].

    Each set needs more than `k` rows (its k-th nearest neighbour). The paper uses k = 3 and
    many thousands of images; with a few dozen, both numbers are coarse and favour the
    smaller set's sparse manifold, so compare them only between equal set sizes.

    Reference: Kynkäänniemi, Karras, Laine, Lehtinen, Aila 2019, "Improved Precision and
    Recall Metric for Assessing Generative Models", section 3, eq. (1)-(3).
    """
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    real = _as_f64(real_feats, "real_feats", min_rows=k + 1)
    fake = _as_f64(fake_feats, "fake_feats", min_rows=k + 1)
    _check_same_dim(real, fake)
    precision = _coverage(fake, real, knn_radii(real, k, chunk_size), chunk_size)
    recall = _coverage(real, fake, knn_radii(fake, k, chunk_size), chunk_size)
    return precision, recall
