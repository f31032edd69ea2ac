"""Does z move an image-conditioned generator's images? Within-shot over between-shot spread.

An image-conditioned GAN (`gan=dagan`) draws image i of a class from shot i mod k. If it
ignores z, the images drawn from one shot are one image repeated: the class gets k images,
however many are drawn. Fidelity, novel_fidelity and copies cannot see this (each repeated
image can be of the class and far from its shot), and diversity over all images mostly
measures how much the shots differ. This ratio can: the mean distance between two images of
one shot over the mean distance between images of two different shots, on denoised pixels
(as memorization's pixel half reads them). About 1 when z varies an image as much as the
choice of shot does; near 0 when each shot gives one image.
"""

from __future__ import annotations

import torch
from torch import Tensor

from metaaug.metrics.image_metrics import denoised_pixels

NAN = float("nan")
MAX_IMAGES = 500  # the first 500 images: a pairwise distance matrix of N images costs N^2


def unavailable(shots: int, images: int) -> str | None:
    """Why the spread of `images` drawn from `shots` cannot be measured; None when it can."""
    if shots < 2 or images < shots + 1:
        return (
            f"shot_spread needs 2 shots or more and more images than shots ({shots} "
            f"shot(s), {images} image(s)): it compares one shot's images with another's"
        )
    return None


def shot_spread(fake: Tensor, shots: int) -> float:
    """Within-shot over between-shot mean L2 distance of `fake` [N, C, H, W], image i drawn
    from shot i mod `shots`; nan where `unavailable`. Reads the first `MAX_IMAGES` images."""
    fake = fake[:MAX_IMAGES]
    if unavailable(shots, len(fake)):
        return NAN
    return spread(denoised_pixels(fake), shots)


def spread(rows: Tensor, shots: int) -> float:
    """Within-shot over between-shot mean L2 distance of `rows` [N, D] (row i from shot
    i mod `shots`, N > `shots` >= 2); 0 when every row is the same. Also what
    scripts/shot_spread.py reads from the sample grids of runs made before this metric."""
    x = rows.double()
    shot = torch.arange(len(x)) % shots
    distance = torch.cdist(x, x)
    same = (shot[:, None] == shot[None]) & ~torch.eye(len(x), dtype=torch.bool)
    other = shot[:, None] != shot[None]
    between = distance[other].mean()
    if between == 0:  # every image the same: z (and the shot) moves nothing
        return 0.0
    return float(distance[same].mean() / between)
