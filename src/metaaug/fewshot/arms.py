"""Augmentation arms: what each adds to an episode's support set before a learner trains on it.

An arm maps (episode, rng) to training images and soft targets [n, ways] (rows sum to 1), the
support set first. Soft targets let mixup say "0.7 of class 2, 0.3 of class 4" and every
other arm say "class 2" to the same learners.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np
import torch
from torch import Tensor

from metaaug.augment.classic import ClassicAugment
from metaaug.fewshot.episodes import Episode


def one_hot(labels: Tensor, ways: int) -> Tensor:
    return torch.nn.functional.one_hot(labels, ways).float()


class Arm(Protocol):
    name: str

    def __call__(self, episode: Episode, rng: torch.Generator) -> tuple[Tensor, Tensor]: ...


class NoAugment:
    """The support set as it is: the reference every other arm is compared with."""

    name = "none"

    def __call__(self, episode: Episode, rng: torch.Generator) -> tuple[Tensor, Tensor]:
        return episode.support, one_hot(episode.support_labels, episode.ways)


class ClassicArm:
    """The support plus `copies` randomly transformed copies of each image (affine, flip, noise:
    `metaaug.augment.classic.ClassicAugment`, the augment group's `classic` option)."""

    name = "classic"

    def __init__(self, transform: ClassicAugment, copies: int = 4) -> None:
        self.transform, self.copies = transform, copies

    def __call__(self, episode: Episode, rng: torch.Generator) -> tuple[Tensor, Tensor]:
        x, y = episode.support, one_hot(episode.support_labels, episode.ways)
        many = x.repeat(self.copies, 1, 1, 1)
        params = self.transform.sample_params(many.shape[0], rng, x.shape[-1])
        augmented = self.transform.apply(many, params).clamp(-1, 1)
        return torch.cat([x, augmented]), torch.cat([y, y.repeat(self.copies, 1)])


class MixupArm:
    """The support plus `copies * n` convex mixtures of random support pairs, with mixed targets:
    x = l x_i + (1 - l) x_j, y = l y_i + (1 - l) y_j, l ~ Beta(alpha, alpha) (Zhang et al.
    2018, "mixup: Beyond Empirical Risk Minimization")."""

    name = "mixup"

    def __init__(self, alpha: float = 0.4, copies: int = 4) -> None:
        self.alpha, self.copies = alpha, copies

    def __call__(self, episode: Episode, rng: torch.Generator) -> tuple[Tensor, Tensor]:
        x, y = episode.support, one_hot(episode.support_labels, episode.ways)
        n, m = x.shape[0], x.shape[0] * self.copies
        i = torch.randint(n, (m,), generator=rng)
        j = torch.randint(n, (m,), generator=rng)
        # torch's Beta sampler takes no generator: draw it from numpy, seeded by `rng`
        seed = int(torch.randint(2**31 - 1, (1,), generator=rng))
        lam = torch.from_numpy(np.random.default_rng(seed).beta(self.alpha, self.alpha, m))
        lam = lam.float()
        mixed = lam.view(-1, 1, 1, 1) * x[i] + (1 - lam.view(-1, 1, 1, 1)) * x[j]
        targets = lam.view(-1, 1) * y[i] + (1 - lam.view(-1, 1)) * y[j]
        return torch.cat([x, mixed]), torch.cat([y, targets])
