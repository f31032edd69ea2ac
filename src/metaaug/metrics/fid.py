"""Sample-quality statistics on feature vectors: FID, KID, IS, memorization, diversity.

Pure functions of feature tensors [N, D] (or class probabilities [N, K]), independent of which
network produced them. Everything is computed in float64 on the CPU: the feature sets are small
and FID's matrix square root loses digits in float32.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor


def _as_f64(feats: Tensor, name: str, min_rows: int = 2) -> Tensor:
    if feats.ndim != 2:
        raise ValueError(f"{name} must be a 2-D [N, D] tensor, got shape {tuple(feats.shape)}")
    if len(feats) < min_rows:
        raise ValueError(f"{name} needs at least {min_rows} rows, got {len(feats)}")
    return feats.detach().to(device="cpu", dtype=torch.float64)


def _check_same_dim(a: Tensor, b: Tensor) -> None:
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"feature dimensions differ: {a.shape[1]} vs {b.shape[1]}")


def _mean_cov(x: Tensor) -> tuple[Tensor, Tensor]:
    mu = x.mean(dim=0)
    centered = x - mu
    return mu, centered.T @ centered / (len(x) - 1)  # unbiased, as numpy.cov


def frechet_distance(feats_a: Tensor, feats_b: Tensor) -> float:
    """Fréchet distance between Gaussians fitted to two feature sets (FID when the features come
    from Inception-v3; here from any network).

        d^2 = ||mu_a - mu_b||^2 + Tr(S_a + S_b - 2 (S_a S_b)^{1/2})

    S_a S_b is not symmetric, but it is similar to M = S_a^{1/2} S_b S_a^{1/2}, which is
    symmetric PSD, so Tr((S_a S_b)^{1/2}) = sum(sqrt(eig(M))) with a symmetric eigensolver:
    real, stable, and no scipy. FID is biased upward for small N (more so when N is not much
    larger than D); compare values only at equal sample sizes, or prefer KID.

    Reference: Heusel et al. 2017, "GANs Trained by a Two Time-Scale Update Rule Converge to a
    Local Nash Equilibrium", eq. (6).
    """
    a = _as_f64(feats_a, "feats_a")
    b = _as_f64(feats_b, "feats_b")
    _check_same_dim(a, b)
    mu_a, cov_a = _mean_cov(a)
    mu_b, cov_b = _mean_cov(b)
    # S_a^{1/2} from the eigendecomposition; rounding leaves eigenvalues of a singular
    # covariance (N <= D) slightly negative
    eigvals, eigvecs = torch.linalg.eigh(cov_a)
    sqrt_a = (eigvecs * eigvals.clamp(min=0).sqrt()) @ eigvecs.T
    m = sqrt_a @ cov_b @ sqrt_a
    m = (m + m.T) / 2  # remove the rounding asymmetry before eigvalsh
    tr_covmean = torch.linalg.eigvalsh(m).clamp(min=0).sqrt().sum()
    diff = mu_a - mu_b
    value = diff @ diff + torch.trace(cov_a) + torch.trace(cov_b) - 2 * tr_covmean
    # Identical sets give a rounding residue of either sign; a distance is never negative.
    return max(float(value), 0.0)


def _polynomial_kernel(x: Tensor, y: Tensor) -> Tensor:
    return (x @ y.T / x.shape[1] + 1) ** 3


def _mmd2_unbiased(x: Tensor, y: Tensor) -> float:
    m = len(x)
    k_xx = _polynomial_kernel(x, x)
    k_yy = _polynomial_kernel(y, y)
    k_xy = _polynomial_kernel(x, y)
    # Unbiased estimator: the within-set sums leave out the diagonal k(x_i, x_i).
    sum_xx = k_xx.sum() - k_xx.diagonal().sum()
    sum_yy = k_yy.sum() - k_yy.diagonal().sum()
    return float((sum_xx + sum_yy) / (m * (m - 1)) - 2 * k_xy.sum() / (m * m))


def kernel_inception_distance(
    feats_a: Tensor,
    feats_b: Tensor,
    subset_size: int = 100,
    subsets: int = 50,
    seed: int = 0,
) -> tuple[float, float]:
    """Kernel (Inception) Distance: unbiased MMD^2 with the kernel k(x, y) = (x.y / d + 1)^3.

    Averaged over `subsets` random subsets of `subset_size` rows drawn without replacement from
    each set (subset_size is clamped to the smaller set), as in the reference implementation.
    Unlike FID it is unbiased, so it is meaningful with a few hundred or fewer samples; it can
    be slightly negative when the two distributions are equal.

    Returns:
        (mean, std) over the subsets (std is the population std, 0 for one subset).

    Reference: Binkowski et al. 2018, "Demystifying MMD GANs", section 4 and appendix.
    """
    a = _as_f64(feats_a, "feats_a")
    b = _as_f64(feats_b, "feats_b")
    _check_same_dim(a, b)
    if subsets < 1:
        raise ValueError(f"subsets must be >= 1, got {subsets}")
    m = min(subset_size, len(a), len(b))
    if m < 2:
        raise ValueError(f"subset_size must be >= 2, got {subset_size}")
    gen = torch.Generator().manual_seed(seed)
    values = torch.empty(subsets, dtype=torch.float64)
    for i in range(subsets):
        idx_a = torch.randperm(len(a), generator=gen)[:m]
        idx_b = torch.randperm(len(b), generator=gen)[:m]
        values[i] = _mmd2_unbiased(a[idx_a], b[idx_b])
    return float(values.mean()), float(values.std(correction=0))


def inception_score(probs: Tensor, splits: int = 1) -> float:
    """Inception Score exp(E_x KL(p(y|x) || p(y))) of class probabilities [N, K].

    High when each image is confidently one class (low entropy p(y|x)) and the classes are
    covered evenly (high entropy p(y)); 1 at worst, K at best. With splits > 1 the score is
    computed on each of `splits` consecutive chunks and averaged, as in the original code (which
    uses 10 splits of 5,000 images); fewer images per split lowers the score.

    Reference: Salimans et al. 2016, "Improved Techniques for Training GANs", section 4.
    """
    p = _as_f64(probs, "probs", min_rows=1)
    if splits < 1 or splits > len(p):
        raise ValueError(f"splits must be in [1, {len(p)}], got {splits}")
    scores = []
    for chunk in torch.tensor_split(p, splits):
        marginal = chunk.mean(dim=0, keepdim=True)
        # xlogy gives 0 log 0 = 0: one-hot predictions are legitimate, not NaN.
        kl = torch.special.xlogy(chunk, chunk) - torch.special.xlogy(chunk, marginal)
        scores.append(math.exp(float(kl.sum(dim=1).mean())))
    return sum(scores) / len(scores)


def exact_cdist(a: Tensor, b: Tensor) -> Tensor:
    """Euclidean distances [N, M] between the rows of `a` [N, D] and `b` [M, D] on the exact
    (non-matmul) path: a point's distance to itself is exactly 0, never a rounding residue."""
    return torch.cdist(a, b, compute_mode="donot_use_mm_for_euclid_dist")


def nearest_distance(queries: Tensor, refs: Tensor, chunk: int = 4096) -> Tensor:
    """[N] float64 Euclidean distance of each row of `queries` [N, D] to its nearest row of
    `refs`, `chunk` queries at a time (the shifted shots of `metaaug.metrics.copies` are 25
    rows per shot: a million generated images at once would need a 1M x 125 matrix)."""
    r = refs.detach().to("cpu", torch.float64)
    parts = [
        exact_cdist(q.to("cpu", torch.float64), r).min(dim=1).values
        for q in queries.detach().split(chunk)
    ]
    return torch.cat(parts) if parts else r.new_zeros(0)


def memorization_score(fake_feats: Tensor, heldout_feats: Tensor, shot_feats: Tensor) -> float:
    """How close the fakes are to the training shots, relative to new real images.

    mean_i min_j ||fake_i - shot_j|| divided by mean_i min_j ||heldout_i - shot_j||. Near 0: the
    generator copies its few shots (which FID against held-out images rewards). Near 1: fakes
    are as far from the shots as unseen real drawings of the class. Above 1: further away than
    real images, e.g. off-distribution samples. inf when the held-out images coincide with the
    shots.
    """
    fake = _as_f64(fake_feats, "fake_feats", min_rows=1)
    heldout = _as_f64(heldout_feats, "heldout_feats", min_rows=1)
    shots = _as_f64(shot_feats, "shot_feats", min_rows=1)
    _check_same_dim(fake, shots)
    _check_same_dim(heldout, shots)
    real = float(nearest_distance(heldout, shots).mean())
    ratio = float(nearest_distance(fake, shots).mean())
    return ratio / real if real > 0 else math.inf


def diversity(feats: Tensor, chunk_size: int = 1024) -> float:
    """Mean pairwise Euclidean distance between distinct rows (the diagonal is excluded).

    Computed in row chunks so that 10,000 samples do not need a 10,000 x 10,000 matrix.
    """
    x = _as_f64(feats, "feats")
    total = torch.zeros((), dtype=torch.float64)
    for start in range(0, len(x), chunk_size):
        # The exact path returns exactly 0 on the diagonal.
        total += exact_cdist(x[start : start + chunk_size], x).sum()
    n = len(x)
    return float(total / (n * (n - 1)))
