"""All image-quality metrics of one set of generated images, in one flat dict."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from metaaug.metrics.copies import copy_mask, copy_shares, shifted
from metaaug.metrics.fid import (
    diversity,
    frechet_distance,
    inception_score,
    kernel_inception_distance,
    memorization_score,
)

NAN = float("nan")


def denoised_pixels(images: Tensor) -> Tensor:
    """Images [N, C, H, W] blurred by a 3x3 binomial filter and flattened to [N, C*H*W].

    Pixel space is where a copy of a shot is plainly a copy, but a generator's speckle adds
    distance to every pixel; the blur averages it away (it cuts i.i.d. noise to 0.375x its
    standard deviation) while strokes, a few pixels wide, keep their place.
    """
    x = images.detach().to("cpu", torch.float32)
    c = x.shape[1]
    row = torch.tensor([1.0, 2.0, 1.0])
    weight = (row[:, None] * row[None, :] / 16).expand(c, 1, 3, 3)
    return F.conv2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), weight, groups=c).flatten(1)


def image_metrics(
    extract: Callable[[Tensor], tuple[Tensor, Tensor]],
    fake: Tensor,
    heldout: Tensor,
    shots: Tensor,
    *,
    kid_subset_size: int = 100,
    kid_subsets: int = 50,
    seed: int = 0,
    of_class: Tensor | None = None,
) -> dict[str, float]:
    """FID, KID, IS, memorization, copies and diversity of `fake` against held-out real images.

    Arguments:
        extract: images -> (features [N, D], class probabilities [N, K]), e.g. `DomainFeatures`.
        fake: generated images [N, C, H, W] in [-1, 1].
        heldout: real images of the target class that the generator never saw.
        shots: the few real images the generator was adapted to.
        kid_subset_size, kid_subsets, seed: KID's random subsets (see
            `kernel_inception_distance`).
        of_class: [N] bool, which fakes the fidelity classifier assigns to the class (for
            `novel_fidelity`; nan without it).

    Memorization is measured twice, on the domain features (`memorization_features`) and on
    denoised pixels (`memorization_pixels`, see `denoised_pixels`); `memorization` is the
    smaller: features alone read a speckled copy of a shot as a new drawing, and pixels alone
    miss a copy that moved by a few pixels. `copies` counts per image, in the same two spaces
    (a copy under either counts; `metaaug.metrics.copies`), and `novel_fidelity` is the share
    of images that are of the class and not copies.

    Returns:
        `fid`, `kid`, `kid_std`, `is`, `memorization`, `memorization_features`,
        `memorization_pixels`, `copies`, `novel_fidelity`, `diversity_fake`, `diversity_real`,
        `num_fake`, `num_real`. A metric whose inputs are too few is nan rather than an error,
        so that a run with a tiny class still reports what it can: fid, kid and kid_std need
        at least 2 fake and 2 held-out images; memorization, copies and novel_fidelity need a
        fake, 2 held-out images and a shot; diversity needs 2 images of its set. IS only needs
        one fake.
    """
    fake_feats, fake_probs = extract(fake)
    num_fake, num_real = len(fake), len(heldout)
    metrics: dict[str, float] = {
        "fid": NAN,
        "kid": NAN,
        "kid_std": NAN,
        "is": inception_score(fake_probs) if num_fake >= 1 else NAN,
        "memorization": NAN,
        "memorization_features": NAN,
        "memorization_pixels": NAN,
        "copies": NAN,
        "novel_fidelity": NAN,
        "diversity_fake": diversity(fake_feats) if num_fake >= 2 else NAN,
        "diversity_real": NAN,
        "num_fake": num_fake,
        "num_real": num_real,
    }
    if num_real < 2:
        return metrics

    real_feats, _ = extract(heldout)
    metrics["diversity_real"] = diversity(real_feats)
    if num_fake >= 2:
        metrics["fid"] = frechet_distance(fake_feats, real_feats)
        metrics["kid"], metrics["kid_std"] = kernel_inception_distance(
            fake_feats, real_feats, subset_size=kid_subset_size, subsets=kid_subsets, seed=seed
        )
    if len(shots) >= 1 and num_fake >= 1:
        shot_feats, _ = extract(shots)
        fake_px, real_px, shot_px = (denoised_pixels(x) for x in (fake, heldout, shots))
        by_features = memorization_score(fake_feats, real_feats, shot_feats)
        by_pixels = memorization_score(fake_px, real_px, shot_px)
        metrics["memorization_features"] = by_features
        metrics["memorization_pixels"] = by_pixels
        metrics["memorization"] = min(by_features, by_pixels)
        moved = shifted(shot_px.view(shots.shape))  # each denoised shot at every small shift
        copies = copy_mask([(fake_feats, real_feats, shot_feats), (fake_px, real_px, moved)])
        metrics |= copy_shares(copies, of_class)
    return metrics
