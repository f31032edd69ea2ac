"""Class fidelity and its ceiling, and a memorization score that sees noisy copies of the shots."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits
from torch import Tensor

from metaaug.data.target import Target, class_target
from metaaug.metrics import DomainFeatures, image_metrics, train_domain_classifier
from metaaug.metrics.fidelity import ClassFidelity, reference_rows, training_classes

META_TRAIN = [str(k) for k in range(6)]
TARGETS = [str(k) for k in range(6, 10)]  # held out: their shots and ceiling rows unseen


@pytest.fixture(scope="module")
def digits() -> dict[str, Tensor]:
    data = load_digits()
    images = torch.tensor(data.images, dtype=torch.float32)[:, None] / 8 - 1
    images = F.interpolate(images, size=16, mode="bilinear", align_corners=False)
    labels = torch.tensor(data.target)
    return {str(k): images[labels == k] for k in range(10)}


@pytest.fixture(scope="module")
def targets(digits: dict[str, Tensor]) -> dict[str, Target]:
    return {name: class_target(name, digits[name], 5, seed=0) for name in TARGETS}


@pytest.fixture(scope="module")
def fidelity(digits: dict[str, Tensor], targets: dict[str, Target]) -> ClassFidelity:
    classes = training_classes(digits, META_TRAIN, targets.values())
    model, _ = train_domain_classifier(
        classes, list(classes), seed=0, holdout_fraction=0.0, noise=0.3, epochs=10
    )
    return ClassFidelity(DomainFeatures(model), tuple(sorted(classes)))


def test_fidelity_classifier_never_sees_shots_or_ceiling_rows(
    digits: dict[str, Tensor], targets: dict[str, Target]
) -> None:
    classes = training_classes(digits, META_TRAIN, targets.values())
    for name, target in targets.items():
        learn, unseen = reference_rows(target.heldout)
        seen = classes[name]
        assert len(seen) == len(learn) and len(learn) + len(unseen) + 5 == len(digits[name])
        for image in torch.cat([target.shots, unseen]):
            assert not (seen == image).flatten(1).all(dim=1).any()
    for name in META_TRAIN:
        assert classes[name] is digits[name]


def test_fidelity_is_near_zero_for_another_class_and_near_ceiling_for_the_class(
    fidelity: ClassFidelity, targets: dict[str, Target]
) -> None:
    seven = targets["7"]
    _, unseen_sevens = reference_rows(seven.heldout)
    _, unseen_nines = reference_rows(targets["9"].heldout)
    own = fidelity.measure(unseen_sevens, seven)
    other = fidelity.measure(unseen_nines, seven)
    assert own["ceiling"] > 0.9
    assert own["fidelity"] == pytest.approx(own["ceiling"])  # the ceiling's own images
    assert other["fidelity"] < 0.05
    # meta-train digits drawn "as a 7": a generator of clean wrong-class images scores low
    assert fidelity.share(targets["6"].shots, "7") == 0.0


def test_fidelity_survives_generator_speckle(
    fidelity: ClassFidelity, targets: dict[str, Target]
) -> None:
    seven = targets["7"]
    _, unseen = reference_rows(seven.heldout)
    gen = torch.Generator().manual_seed(1)
    noisy = (unseen + 0.2 * torch.randn(unseen.shape, generator=gen)).clamp(-1, 1)
    assert fidelity.measure(noisy, seven)["fidelity"] > 0.8


def test_fidelity_unavailable_without_heldout_images(
    fidelity: ClassFidelity, digits: dict[str, Tensor]
) -> None:
    only_shots = Target("mine", digits["7"][:5], digits["7"][:0])
    reason = fidelity.unavailable(only_shots)
    assert reason is not None and "no held-out images" in reason and "target.shots" in reason
    assert math.isnan(fidelity.measure(digits["7"][5:20], only_shots)["fidelity"])
    one_left = Target("7", digits["7"][:5], digits["7"][5:6])
    assert "ceiling" in str(fidelity.unavailable(one_left))
    assert math.isnan(fidelity.measure(digits["7"][6:20], one_left)["ceiling"])


def test_memorization_catches_noisy_copies_of_the_shots(
    digits: dict[str, Tensor], fidelity: ClassFidelity
) -> None:
    extract = fidelity.classify
    sevens = digits["7"]
    shots, heldout, fresh = sevens[:5], sevens[5:90], sevens[90:]
    gen = torch.Generator().manual_seed(0)
    copies = shots.repeat(20, 1, 1, 1)
    speckled = (copies + 0.3 * torch.randn(copies.shape, generator=gen)).clamp(-1, 1)

    noisy = image_metrics(extract, speckled, heldout, shots)
    new = image_metrics(extract, fresh, heldout, shots)
    # pixel distance after denoising sees the copies that speckle hides from raw distances
    assert noisy["memorization"] == noisy["memorization_pixels"] < 0.5
    assert noisy["memorization_features"] > noisy["memorization_pixels"] + 0.2
    assert 0.75 < new["memorization"] < 1.3  # new drawings: as far as real ones
    assert image_metrics(extract, copies, heldout, shots)["memorization"] < 0.01
