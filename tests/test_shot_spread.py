"""shot_spread: within-shot over between-shot distance of an image-conditioned GAN's images."""

from __future__ import annotations

import math

import numpy as np
import torch
from scipy.ndimage import convolve
from scipy.spatial.distance import cdist

from metaaug.metrics.shot_spread import shot_spread, unavailable


def _reference(fake: np.ndarray, shots: int) -> float:
    """The same ratio with scipy: a 3x3 binomial blur (edges repeated), then L2 distances."""
    kernel = np.outer([1, 2, 1], [1, 2, 1]) / 16
    blurred = np.stack([convolve(x[0], kernel, mode="nearest") for x in fake])
    d = cdist(blurred.reshape(len(fake), -1), blurred.reshape(len(fake), -1))
    shot = np.arange(len(fake)) % shots
    same = (shot[:, None] == shot[None]) & ~np.eye(len(fake), dtype=bool)
    return float(d[same].mean() / d[shot[:, None] != shot[None]].mean())


def test_shot_spread_matches_an_independent_computation() -> None:
    fake = torch.rand(23, 1, 8, 8, generator=torch.Generator().manual_seed(0)) * 2 - 1
    assert math.isclose(shot_spread(fake, 5), _reference(fake.numpy(), 5), rel_tol=1e-9)


def test_one_image_per_shot_reads_0_and_images_that_ignore_the_shot_read_about_1() -> None:
    gen = torch.Generator().manual_seed(1)
    shots = torch.rand(5, 1, 16, 16, generator=gen) * 2 - 1
    repeated = shots.repeat(8, 1, 1, 1)  # image i is shot i mod 5, whatever z
    assert shot_spread(repeated, 5) < 1e-6  # 0 but for rounding in the distances
    assert shot_spread(torch.ones(10, 1, 8, 8), 5) == 0.0  # every image the same
    # a speckle per image moves the ratio a little off 0, not towards 1
    speckled = repeated + 0.02 * torch.randn(repeated.shape, generator=gen)
    assert 0 < shot_spread(speckled, 5) < 0.1
    independent = torch.rand(400, 1, 16, 16, generator=gen) * 2 - 1
    assert abs(shot_spread(independent, 5) - 1.0) < 0.02


def test_shot_spread_needs_two_shots_and_more_images_than_shots() -> None:
    fake = torch.zeros(10, 1, 8, 8)
    assert math.isnan(shot_spread(fake, 1)) and "2 shots or more" in unavailable(1, 10)
    assert math.isnan(shot_spread(fake[:3], 3)) and "(3 shot(s), 3 image(s))" in unavailable(3, 3)
    assert unavailable(3, 4) is None
