"""Metrics: FID/KID/IS against independent references, memorization, the domain classifier."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.linalg
import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits
from torch import Tensor

from metaaug.errors import UserError
from metaaug.metrics import (
    DomainFeatures,
    diversity,
    frechet_distance,
    image_metrics,
    inception_score,
    kernel_inception_distance,
    load_or_train_domain_classifier,
    memorization_score,
    train_domain_classifier,
)

META_TRAIN = [str(k) for k in range(6)]  # digits 6-9 play the held-out target classes
KEYS = {"fid", "kid", "kid_std", "is", "memorization", "diversity_fake", "diversity_real"}


def _gaussian(n: int, dim: int, seed: int, shift: float = 0.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    mix = rng.normal(size=(dim, dim)) / math.sqrt(dim) + np.eye(dim)
    return rng.normal(size=(n, dim)) @ mix + shift + rng.normal(size=dim)


def _fid_reference(a: np.ndarray, b: np.ndarray) -> float:
    mu_a, mu_b = a.mean(axis=0), b.mean(axis=0)
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    covmean = scipy.linalg.sqrtm(cov_a @ cov_b).real
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(cov_a + cov_b - 2 * covmean))


def _mmd_reference(x: np.ndarray, y: np.ndarray) -> float:
    d, m = x.shape[1], len(x)
    k_xx, k_yy, k_xy = ((u @ v.T / d + 1) ** 3 for u, v in ((x, x), (y, y), (x, y)))
    within = (k_xx.sum() - np.trace(k_xx) + k_yy.sum() - np.trace(k_yy)) / (m * (m - 1))
    return float(within - 2 * k_xy.mean())


@pytest.mark.parametrize("dim", [16, 64])
def test_fid_matches_scipy_reference(dim: int) -> None:
    a, b = _gaussian(600, dim, seed=1), _gaussian(500, dim, seed=2, shift=0.3)
    expected = _fid_reference(a, b)
    assert expected > 1.0
    assert frechet_distance(torch.from_numpy(a), torch.from_numpy(b)) == pytest.approx(
        expected, rel=1e-3
    )


def test_fid_of_a_set_with_itself_is_zero() -> None:
    a = torch.from_numpy(_gaussian(300, 64, seed=3))
    assert abs(frechet_distance(a, a)) < 1e-6 * float(a.var(dim=0).sum())


def test_fid_closed_form_for_diagonal_gaussians_with_exact_moments() -> None:
    def exact(mu: Tensor, sigma: Tensor, seed: int) -> Tensor:
        # Whiten a sample so that its mean is 0 and its unbiased covariance exactly I.
        z = torch.randn(200, len(mu), generator=torch.Generator().manual_seed(seed)).double()
        z = z - z.mean(dim=0)
        chol = torch.linalg.cholesky(z.T @ z / (len(z) - 1))
        z = torch.linalg.solve_triangular(chol, z.T, upper=False).T
        return z * sigma + mu

    mu_a, mu_b = torch.zeros(8).double(), torch.linspace(-1, 1, 8).double()
    sig_a, sig_b = torch.linspace(0.5, 2, 8).double(), torch.full((8,), 1.5).double()
    expected = float(((mu_a - mu_b) ** 2).sum() + ((sig_a - sig_b) ** 2).sum())
    got = frechet_distance(exact(mu_a, sig_a, 0), exact(mu_b, sig_b, 1))
    assert got == pytest.approx(expected, rel=1e-9)


def test_fid_needs_two_rows_per_set() -> None:
    with pytest.raises(ValueError, match="at least 2 rows"):
        frechet_distance(torch.randn(1, 4), torch.randn(5, 4))


def test_kid_matches_direct_numpy_mmd_on_full_sets() -> None:
    a, b = _gaussian(60, 16, seed=4), _gaussian(60, 16, seed=5, shift=0.5)
    mean, std = kernel_inception_distance(
        torch.from_numpy(a), torch.from_numpy(b), subset_size=60, subsets=1
    )
    # With subset_size == N the one subset is a permutation; the MMD does not depend on order.
    assert mean == pytest.approx(_mmd_reference(a, b), rel=1e-9)
    assert std == 0.0


def test_kid_is_near_zero_for_one_distribution_and_positive_for_a_shift() -> None:
    x = torch.from_numpy(_gaussian(1000, 16, seed=6))
    kid_same, std_same = kernel_inception_distance(x[:500], x[500:], subsets=20)
    kid_shift, _ = kernel_inception_distance(x[:500], x[500:] + 1.0, subsets=20)
    assert abs(kid_same) < 3 * std_same
    assert kid_shift > 0.5
    assert kid_shift > 50 * abs(kid_same)


def test_inception_score_extremes() -> None:
    assert inception_score(torch.full((40, 10), 0.1)) == pytest.approx(1.0, abs=1e-6)
    one_hot = F.one_hot(torch.arange(40) % 8, 8).float()
    assert inception_score(one_hot) == pytest.approx(8.0, abs=1e-6)
    assert inception_score(one_hot, splits=5) == pytest.approx(8.0, abs=1e-6)


def test_memorization_separates_copies_from_new_samples() -> None:
    gen = torch.Generator().manual_seed(0)
    shots = torch.randn(5, 32, generator=gen)
    heldout = torch.randn(200, 32, generator=gen)
    copies = shots.repeat(40, 1) + 1e-3 * torch.randn(200, 32, generator=gen)
    fresh = torch.randn(200, 32, generator=gen)
    assert memorization_score(copies, heldout, shots) < 0.05
    assert 0.7 < memorization_score(fresh, heldout, shots) < 1.3


def test_diversity_is_the_mean_distance_between_distinct_points() -> None:
    points = torch.tensor([[0.0], [1.0], [3.0]])  # pairwise distances 1, 3, 2
    assert diversity(points) == pytest.approx(2.0)
    x = torch.randn(50, 8)
    assert diversity(x, chunk_size=7) == pytest.approx(float(torch.pdist(x.double()).mean()))


@pytest.fixture(scope="module")
def digits() -> dict[str, Tensor]:
    data = load_digits()
    images = torch.tensor(data.images, dtype=torch.float32)[:, None] / 8 - 1  # [0,16] -> [-1,1]
    images = F.interpolate(images, size=16, mode="bilinear", align_corners=False)
    labels = torch.tensor(data.target)
    return {str(k): images[labels == k] for k in range(10)}


@pytest.fixture(scope="module")
def extract(digits: dict[str, Tensor]) -> DomainFeatures:
    model, accuracy = train_domain_classifier(digits, META_TRAIN, seed=0)
    assert accuracy > 0.9
    assert model.num_classes == len(META_TRAIN)
    return DomainFeatures(model)


def test_domain_classifier_learns_meta_train_classes(extract: DomainFeatures) -> None:
    feats, probs = extract(torch.zeros(3, 1, 16, 16))
    assert feats.shape == (3, extract.feature_dim) and feats.dtype == torch.float32
    assert probs.shape == (3, 6)
    assert torch.allclose(probs.sum(dim=1), torch.ones(3))


def test_domain_features_reject_images_of_another_format(extract: DomainFeatures) -> None:
    with pytest.raises(UserError, match="expects"):
        extract(torch.zeros(2, 3, 16, 16))
    with pytest.raises(UserError, match=r"\[-1, 1\]"):
        extract(torch.full((2, 1, 16, 16), 255.0))


def test_training_leaves_the_global_rng_alone(digits: dict[str, Tensor]) -> None:
    state = torch.get_rng_state()
    train_domain_classifier(digits, ["0", "1"], epochs=1)
    assert torch.equal(state, torch.get_rng_state())


def test_unknown_class_is_a_user_error(digits: dict[str, Tensor]) -> None:
    with pytest.raises(UserError, match="did you mean"):
        train_domain_classifier(digits, ["0", "11"], epochs=1)


def test_domain_classifier_cache(digits: dict[str, Tensor], tmp_path) -> None:
    kwargs = {"cache_dir": tmp_path, "epochs": 3}
    first, info1 = load_or_train_domain_classifier(digits, META_TRAIN, key={"ds": "a"}, **kwargs)
    second, info2 = load_or_train_domain_classifier(
        digits, META_TRAIN[::-1], key={"ds": "a"}, **kwargs
    )
    assert (info1["cached"], info2["cached"]) == (False, True)
    assert info1["path"] == info2["path"] and info1["accuracy"] == info2["accuracy"]
    assert not second.training
    images = digits["7"][:20]
    assert torch.equal(DomainFeatures(first)(images)[0], DomainFeatures(second)(images)[0])

    _, info3 = load_or_train_domain_classifier(digits, META_TRAIN, key={"ds": "b"}, **kwargs)
    assert info3["cached"] is False and info3["path"] != info1["path"]
    assert len(list(tmp_path.iterdir())) == 2  # no temporary files left behind

    ckpt = torch.load(info1["path"], weights_only=True)
    assert ckpt["class_names"] == META_TRAIN and ckpt["config"]["num_classes"] == 6


def test_image_metrics_rank_same_class_above_other_class(
    digits: dict[str, Tensor], extract: DomainFeatures
) -> None:
    sevens = digits["7"][
        torch.randperm(len(digits["7"]), generator=torch.Generator().manual_seed(0))
    ]
    shots, heldout, other_sevens = sevens[:5], sevens[5:85], sevens[85:]
    same = image_metrics(extract, other_sevens, heldout, shots)
    other = image_metrics(extract, digits["9"], heldout, shots)
    copies = image_metrics(extract, shots.repeat(20, 1, 1, 1), heldout, shots)

    assert KEYS | {"num_fake", "num_real"} <= set(same)
    assert same["num_real"] == 80 and same["num_fake"] == len(other_sevens)
    assert same["fid"] < 0.5 * other["fid"]
    assert same["kid"] < 0.5 * other["kid"]
    assert copies["memorization"] < 0.05
    assert 0.7 < same["memorization"] < 1.3  # new drawings are as far from the shots as real ones
    assert 1.0 <= same["is"] <= 6.0


def test_image_metrics_with_too_few_heldout_images_are_nan(
    digits: dict[str, Tensor], extract: DomainFeatures
) -> None:
    metrics = image_metrics(extract, digits["8"][:30], digits["8"][30:31], digits["8"][31:36])
    for key in ("fid", "kid", "memorization", "diversity_real"):
        assert math.isnan(metrics[key])
    assert metrics["is"] >= 1.0 and metrics["diversity_fake"] > 0


# --- copies, counted per image ---------------------------------------------------------------


def _moved(images: Tensor, dy: int, dx: int) -> Tensor:
    """`images` moved by (dy, dx) pixels over a dark (-1) ground, as a generator would draw."""
    h, w = images.shape[-2:]
    padded = F.pad(images, (2, 2, 2, 2), value=-1.0)
    return padded[:, :, 2 + dy : 2 + dy + h, 2 + dx : 2 + dx + w]


def _shots_heldout_new(digits: dict[str, Tensor], name: str) -> tuple[Tensor, Tensor, Tensor]:
    order = torch.randperm(len(digits[name]), generator=torch.Generator().manual_seed(0))
    images = digits[name][order]
    return images[:5], images[5:85], images[85:]


@pytest.mark.parametrize("name", ["6", "7", "8", "9"])
def test_copies_finds_speckled_and_shifted_copies_of_the_shots(
    digits: dict[str, Tensor], extract: DomainFeatures, name: str
) -> None:
    shots, heldout, _ = _shots_heldout_new(digits, name)
    repeated = shots.repeat(20, 1, 1, 1)
    g = torch.Generator().manual_seed(1)
    speckled = (repeated + 0.2 * torch.randn(repeated.shape, generator=g)).clamp(-1, 1)
    moves = [(0, 1), (1, 0), (0, -1), (-1, 0), (1, 1), (-1, -1), (2, 0), (0, 2)]
    shifted = torch.cat([_moved(repeated[i : i + 1], *moves[i % 8]) for i in range(100)])
    for fake in (speckled, shifted, repeated):
        metrics = image_metrics(extract, fake, heldout, shots, of_class=torch.ones(100).bool())
        assert metrics["copies"] >= 0.9
        assert metrics["novel_fidelity"] <= 0.1  # of the class, but copies


def test_copies_of_new_real_drawings_is_about_the_quantile(
    digits: dict[str, Tensor], extract: DomainFeatures
) -> None:
    shares = []
    for name in ("6", "7", "8", "9"):
        shots, heldout, new = _shots_heldout_new(digits, name)
        everyone = torch.ones(len(new)).bool()
        metrics = image_metrics(extract, new, heldout, shots, of_class=everyone)
        assert metrics["copies"] <= 0.12
        assert metrics["novel_fidelity"] == pytest.approx(1 - metrics["copies"])
        shares.append(metrics["copies"])
    assert 0.01 <= sum(shares) / len(shares) <= 0.09  # about 0.05 of new drawings


def test_half_copies_and_half_noise_count_half_where_memorization_reads_novel(
    digits: dict[str, Tensor], extract: DomainFeatures
) -> None:
    shots, heldout, _ = _shots_heldout_new(digits, "7")
    noise = torch.rand(50, 1, 16, 16, generator=torch.Generator().manual_seed(2)) * 2 - 1
    fake = torch.cat([shots.repeat(10, 1, 1, 1), noise])
    # the classifier calls the copies sevens and the noise not
    of_class = torch.arange(100) < 50
    metrics = image_metrics(extract, fake, heldout, shots, of_class=of_class)
    assert metrics["copies"] == pytest.approx(0.5, abs=0.05)
    assert metrics["novel_fidelity"] == pytest.approx(0.0, abs=0.05)
    assert metrics["memorization"] > 0.5  # the mean hides the copies


def test_copy_mask_matches_a_hand_computed_threshold() -> None:
    from metaaug.metrics.copies import copy_mask, copy_shares

    shots = torch.tensor([[0.0, 0.0], [10.0, 0.0]])
    # nearest-shot distances 1, 2, 3, 4, 5: median 3; the 5th percentile of 1..5 is 1.2
    heldout = torch.tensor([[0.0, 1.0], [10.0, 2.0], [0.0, 3.0], [10.0, 4.0], [0.0, 5.0]])
    fake = torch.tensor([[0.0, 1.1], [10.0, 1.3], [5.0, 0.0], [0.0, 0.0]])
    mask = copy_mask([(fake, heldout, shots)])
    assert mask.tolist() == [True, False, False, True]
    shares = copy_shares(mask, torch.tensor([True, True, False, False]))
    assert shares == {"copies": 0.5, "novel_fidelity": 0.25}
    assert math.isnan(copy_shares(mask, None)["novel_fidelity"])
    # a copy under either space counts (the second space finds the third fake)
    second = (torch.tensor([[9.0], [9.0], [0.0], [9.0]]), torch.arange(1.0, 6.0)[:, None],
              torch.zeros(1, 1))  # fmt: skip
    assert copy_mask([(fake, heldout, shots), second]).tolist() == [True, False, True, True]
