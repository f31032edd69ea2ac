"""Improved precision and recall (Kynkäänniemi et al. 2019) against a brute-force reference."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from metaaug.metrics.precision_recall import knn_radii, precision_recall


def _reference(real: np.ndarray, fake: np.ndarray, k: int) -> tuple[float, float]:
    """The paper's definition, one loop per point: a sample is inside a set's manifold when it
    lies within the k-NN radius of some point of the set."""

    def radius(points: np.ndarray, i: int) -> float:
        others = [np.linalg.norm(points[i] - points[j]) for j in range(len(points)) if j != i]
        return sorted(others)[k - 1]

    def inside(x: np.ndarray, points: np.ndarray, radii: list[float]) -> bool:
        return any(np.linalg.norm(x - p) <= r for p, r in zip(points, radii, strict=True))

    real_radii = [radius(real, i) for i in range(len(real))]
    fake_radii = [radius(fake, i) for i in range(len(fake))]
    precision = np.mean([inside(f, real, real_radii) for f in fake])
    recall = np.mean([inside(r, fake, fake_radii) for r in real])
    return float(precision), float(recall)


@pytest.mark.parametrize(("k", "seed"), [(1, 0), (3, 1), (3, 2), (5, 3)])
def test_matches_the_brute_force_definition(k: int, seed: int) -> None:
    gen = np.random.default_rng(seed)
    real = gen.normal(size=(40, 6))
    fake = gen.normal(loc=0.7, scale=1.3, size=(33, 6))  # shifted and wider: partly outside
    expected = _reference(real, fake, k)
    got = precision_recall(torch.from_numpy(real), torch.from_numpy(fake).float(), k=k,
                           chunk_size=7)  # chunks that do not divide the sets  # fmt: skip
    assert got == pytest.approx(expected, abs=1e-12)
    assert 0 < min(got) < 1  # the case is not trivial


def test_radii_are_the_kth_nearest_other_point() -> None:
    points = torch.tensor([[0.0], [1.0], [3.0], [6.0]])
    assert knn_radii(points, k=1).tolist() == [1.0, 1.0, 2.0, 3.0]
    assert knn_radii(points, k=2).tolist() == [3.0, 2.0, 3.0, 5.0]


def test_copies_of_a_few_points_have_full_precision_and_low_recall() -> None:
    gen = torch.Generator().manual_seed(0)
    real = torch.randn(200, 8, generator=gen)
    copies = real[:5].repeat(20, 1) + 1e-3 * torch.randn(100, 8, generator=gen)
    precision, recall = precision_recall(real, copies, k=3)
    assert precision == 1.0
    assert recall < 0.1
    assert precision_recall(real, real, k=3) == (1.0, 1.0)


def test_too_few_points_or_a_bad_k_are_refused() -> None:
    x = torch.randn(3, 4)
    with pytest.raises(ValueError, match="at least 4 rows"):
        precision_recall(x, torch.randn(10, 4), k=3)
    with pytest.raises(ValueError, match="k must be >= 1"):
        precision_recall(torch.randn(10, 4), torch.randn(10, 4), k=0)
    with pytest.raises(ValueError, match="feature dimensions differ"):
        precision_recall(torch.randn(10, 4), torch.randn(10, 5))
