"""Copies of the shots, counted per image.

`memorization` is a mean distance ratio: a generator that returns half exact copies of its
shots and half noise reads as novel on average. Here each generated image is judged on its
own: it is a copy when it lies nearer to a shot than all but `quantile` of the new real
drawings of the class (the held-out images) do.

Nearness is taken in two spaces, and a copy under either counts: the domain classifier's
features, and denoised pixels compared at every shift of up to `MAX_SHIFT` pixels (the blur
averages a generator's speckle away; the shifts find a shot moved by a pixel or two, which a
plain pixel distance reads as far). Each space's distances are divided by the median
held-out distance, an image's score is the smaller of the two, and the threshold is the
`quantile` of the held-out images' own scores: so about `quantile` of new real drawings
count as copies, whichever space finds them.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from metaaug.metrics.fid import nearest_distance

COPY_QUANTILE = 0.05  # 1 in 20 new real drawings is itself as near a shot as a "copy"
MAX_SHIFT = 2  # pixels; a copy moved further than this is left to the feature space


def _background(images: Tensor) -> Tensor:
    """[N, C, 1, 1]: each image's background, the median of its outermost pixels."""
    x = images.flatten(0, 1)
    ring = torch.cat([x[:, 0], x[:, -1], x[:, 1:-1, 0], x[:, 1:-1, -1]], dim=1)
    return ring.median(dim=1).values.view(*images.shape[:2], 1, 1)


def shifted(images: Tensor, max_shift: int = MAX_SHIFT) -> Tensor:
    """[N * (2s+1)^2, C*H*W]: every image [N, C, H, W] moved by each (dy, dx) in [-s, s]^2,
    its background (`_background`) filling the uncovered border."""
    s = max_shift
    x = images.detach().to("cpu", torch.float32)
    n, c, h, w = x.shape
    padded = _background(x).expand(n, c, h + 2 * s, w + 2 * s).clone()
    padded[:, :, s : s + h, s : s + w] = x
    moved = [padded[:, :, dy : dy + h, dx : dx + w] for dy in range(2 * s + 1)
             for dx in range(2 * s + 1)]  # fmt: skip
    return torch.cat(moved).flatten(1)


def copy_mask(
    spaces: Sequence[tuple[Tensor, Tensor, Tensor]], quantile: float = COPY_QUANTILE
) -> Tensor:
    """[N] bool: which fakes are copies of a shot.

    Arguments:
        spaces: per space, (fake [N, D], heldout [M, D], shots [K, D]) in that space; M >= 1.
        quantile: the share of held-out images that score as copies themselves.
    """
    fake_score, held_score = None, None
    for fake, heldout, shots in spaces:
        held = nearest_distance(heldout, shots)
        scale = held.median().clamp_min(torch.finfo(torch.float64).tiny)
        f, h = nearest_distance(fake, shots) / scale, held / scale
        fake_score = f if fake_score is None else torch.minimum(fake_score, f)
        held_score = h if held_score is None else torch.minimum(held_score, h)
    assert fake_score is not None and held_score is not None, "no space given"
    return fake_score <= torch.quantile(held_score, quantile)


def copy_shares(copies: Tensor, of_class: Tensor | None) -> dict[str, float]:
    """`copies`: the share of images that are copies; `novel_fidelity`: the share that are
    of the class (`of_class` [N] bool, from the fidelity classifier) and not copies (nan
    without `of_class`). Copying the shots scores copies 1 and novel_fidelity 0."""
    novel = float("nan") if of_class is None else float((of_class & ~copies).float().mean())
    return {"copies": float(copies.float().mean()), "novel_fidelity": novel}
