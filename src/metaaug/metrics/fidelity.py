"""Class fidelity: the share of generated images that a classifier of real images assigns to the
target class (the "GAN-test" of Shmelkov et al., ECCV 2018), beside its ceiling.

FID on domain features, IS and memorization cannot tell a clean drawing of the wrong class from
one of the right class; this can. The classifier is trained on real images only, independently
of any generator: every meta-train class whole, and of each class the tool adapts to (targets,
meta-val classes) the even rows of its held-out images. Never the shots (a generator could
score by copying them: `memorization` reads that) and never the odd held-out rows, which
measure the *ceiling*: the classifier's accuracy on real drawings of the class it never saw. A
fidelity near the ceiling means the generated images are as recognizable as real ones.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import torch
from torch import Tensor

from metaaug.data.target import Target
from metaaug.metrics.domain import DomainFeatures

NAN = float("nan")


def reference_rows(heldout: Tensor) -> tuple[Tensor, Tensor]:
    """A target's held-out images split in two: (even rows: train the fidelity classifier,
    odd rows: measure its ceiling). Fixed rows, so every run of a seed uses the same cut."""
    return heldout[0::2], heldout[1::2]


def training_classes(
    classes: Mapping[str, Tensor], train_names: Iterable[str], targets: Iterable[Target]
) -> dict[str, Tensor]:
    """The images the fidelity classifier learns: meta-train classes whole, and the reference
    rows of each target (a target without held-out images is left out: it cannot be measured)."""
    out = {name: classes[name] for name in train_names}
    for target in targets:
        learn, _ = reference_rows(target.heldout)
        if len(learn):
            out[target.class_name] = learn
    return out


def digest(images: Tensor) -> str:
    """A short fingerprint of image content (the cache key of a user's own target folder)."""
    data = images.detach().to("cpu", torch.float32).contiguous().numpy().tobytes()
    return hashlib.sha256(data).hexdigest()[:16]


@dataclass(frozen=True)
class ClassFidelity:
    """Fidelity and ceiling of a trained classifier whose labels are `class_names`.

    Example:
        >>> fidelity = ClassFidelity(DomainFeatures(model), class_names)
        >>> fidelity.measure(fakes, target)  # {"fidelity": 0.71, "ceiling": 0.88}
    """

    classify: DomainFeatures
    class_names: tuple[str, ...]
    path: str = ""  # where the classifier is cached

    def hits(self, images: Tensor, class_name: str) -> Tensor | None:
        """[N] bool: which `images` are classified as `class_name` (None for an unknown class
        or no images)."""
        if class_name not in self.class_names or len(images) == 0:
            return None
        _, probs = self.classify(images)
        return probs.argmax(dim=1).cpu() == self.class_names.index(class_name)

    def share(self, images: Tensor, class_name: str) -> float:
        """The share of `images` classified as `class_name` (nan for an unknown class or no
        images)."""
        hits = self.hits(images, class_name)
        return NAN if hits is None else float(hits.float().mean())

    def unavailable(self, target: Target) -> str | None:
        """Why fidelity (or its ceiling) cannot be measured for `target`; None when both can."""
        n = len(target.heldout)
        if target.class_name not in self.class_names or n == 0:
            return (
                f"target {target.class_name!r} has no held-out images beyond its shots, so no "
                "classifier knows the class; give the target more images than target.shots"
            )
        if n < 2:
            return (
                f"target {target.class_name!r} has {n} held-out image, none left to measure the "
                "ceiling; give the target at least 2 images more than target.shots"
            )
        return None

    def measure(self, fake: Tensor, target: Target, hits: Tensor | None = None) -> dict[str, float]:
        """`fidelity` of `fake` and the `ceiling` (accuracy on the target's unseen real images);
        `hits`, when given, is `self.hits(fake, target.class_name)` already computed."""
        _, unseen = reference_rows(target.heldout)
        fidelity = (
            self.share(fake, target.class_name) if hits is None else float(hits.float().mean())
        )
        return {"fidelity": fidelity, "ceiling": self.share(unseen, target.class_name)}
