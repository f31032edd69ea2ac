"""Image-quality metrics: FID, KID, IS, memorization and diversity on a domain classifier's
features (or any other feature extractor)."""

from __future__ import annotations

from metaaug.metrics.cache import load_or_train_domain_classifier
from metaaug.metrics.domain import DomainFeatures, train_domain_classifier
from metaaug.metrics.fid import (
    diversity,
    frechet_distance,
    inception_score,
    kernel_inception_distance,
    memorization_score,
)
from metaaug.metrics.image_metrics import image_metrics

__all__ = [
    "DomainFeatures",
    "diversity",
    "frechet_distance",
    "image_metrics",
    "inception_score",
    "kernel_inception_distance",
    "load_or_train_domain_classifier",
    "memorization_score",
    "train_domain_classifier",
]
