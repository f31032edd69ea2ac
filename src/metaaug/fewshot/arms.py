"""Augmentation arms: what each adds to an episode's support set before a learner trains on it.

An arm maps (episode, rng) to training images and soft targets [n, ways] (rows sum to 1), the
support set first. Soft targets let mixup say "0.7 of class 2, 0.3 of class 4" and every
other arm say "class 2" to the same learners.
"""

from __future__ import annotations

from functools import partial
from typing import Protocol

import numpy as np
import torch
from torch import Tensor

from metaaug.augment.classic import ClassicAugment
from metaaug.fewshot.episodes import Episode
from metaaug.meta.batching import over_tasks, stack, to_device
from metaaug.meta.functional import Pair, Params, draw_noise, parameters
from metaaug.meta.inner import inner_loop
from metaaug.meta.optimizers import InnerOptimizer
from metaaug.meta.settings import Adversarial, Augment, OptimizerSpec
from metaaug.models.gan import GAN
from metaaug.precision import FP32, Precision


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
        lam = torch.from_numpy(np.random.default_rng(seed).beta(self.alpha, self.alpha, m)).float()
        mixed = lam.view(-1, 1, 1, 1) * x[i] + (1 - lam.view(-1, 1, 1, 1)) * x[j]
        targets = lam.view(-1, 1) * y[i] + (1 - lam.view(-1, 1)) * y[j]
        return torch.cat([x, mixed]), torch.cat([y, targets])


class GanArm:
    """The support plus `per_class` images per class from a GAN initialization adapted to that
    class's shots (`steps` rounds of the GAN loop, all classes of an episode adapted at once
    with torch.func.vmap), or, with `steps=0`, sampled from the initialization as it is (a
    DAGAN-style image-conditioned generator transforms the class's shots with no adaptation).

    A class-conditional generator is adapted and sampled in slot 0, as `metaaug train` does.
    """

    name = "gan"

    def __init__(
        self,
        init: GAN,
        adversarial: Adversarial,
        optimizer: OptimizerSpec,
        steps: int,
        per_class: int = 20,
        augment: Augment | None = None,
        precision: Precision = FP32,
    ) -> None:
        self.pair = Pair(init.generator, init.discriminator, adversarial, augment, precision)
        self.g0, self.d0 = parameters(init.generator), parameters(init.discriminator)
        self.inner = InnerOptimizer(optimizer)
        self.steps, self.per_class = steps, per_class

    def synthesize(self, shots: Tensor, rng: torch.Generator) -> Tensor:
        """shots [ways, k, C, H, W] -> generated images [ways, per_class, C, H, W]."""
        ways, k, size = shots.shape[0], shots.shape[1], shots.shape[-1]
        device = next(iter(self.g0.values())).device
        shots = shots.to(device)
        pair = self.pair
        z = torch.randn(ways, self.per_class, pair.z_dim, generator=rng).to(device)
        if self.steps > 0:
            noise = stack([draw_noise(pair, self.steps, k, size, rng) for _ in range(ways)])
            adapt = partial(inner_loop, pair, self.inner, self.g0, self.d0)
            work = pair.precision.cast(shots)  # the adaptation's format; sampling stays fp32
            with pair.precision.autocast():
                g = over_tasks(adapt, work, to_device(noise, device, work.dtype))[0]
        else:
            g = {name: v.expand(ways, *v.shape) for name, v in self.g0.items()}

        def generate(params: Params, z: Tensor, own_shots: Tensor) -> Tensor:
            index = torch.arange(z.shape[0], device=z.device)
            return pair.g(params, z, pair.conditioning.for_sampling(index, own_shots, z.device))

        with torch.no_grad():
            return over_tasks(generate, g, z, shots).clamp(-1, 1).cpu()

    def __call__(self, episode: Episode, rng: torch.Generator) -> tuple[Tensor, Tensor]:
        x, y = episode.support, one_hot(episode.support_labels, episode.ways)
        shots = x.view(episode.ways, -1, *x.shape[1:])  # episodes are ordered class by class
        fakes = self.synthesize(shots, rng).flatten(0, 1)
        labels = torch.arange(episode.ways).repeat_interleave(self.per_class)
        return torch.cat([x, fakes]), torch.cat([y, one_hot(labels, episode.ways)])


class SyntheticArm:
    """The support plus up to `per_class` images per class from folders that `metaaug train`
    wrote (`fewshot.synthetic_path`); a class without synthetic images gets none.

    The images of a class were generated from its `shot_rows` (recorded in the folder's
    manifest): the episode sampler makes those shots the class's support in every episode,
    so the arm adds what a user with exactly those shots would have added.
    """

    name = "synthetic"

    def __init__(self, images: dict[str, Tensor], per_class: int = 20) -> None:
        self.images, self.per_class = images, per_class

    def __call__(self, episode: Episode, rng: torch.Generator) -> tuple[Tensor, Tensor]:
        x, y = episode.support, one_hot(episode.support_labels, episode.ways)
        extra, labels = [x], [y]
        for slot, name in enumerate(episode.class_names):
            pool = self.images.get(name)
            if pool is None:
                continue
            rows = torch.randperm(pool.shape[0], generator=rng)[: self.per_class]
            extra.append(pool[rows])
            labels.append(one_hot(torch.full((len(rows),), slot), episode.ways))
        return torch.cat(extra), torch.cat(labels)


def combined(made: list[tuple[Tensor, Tensor]], support: int) -> tuple[Tensor, Tensor]:
    """Arm `a+b`: the support (the first `support` rows of every arm's output) plus what each
    arm adds to it, from the arms' own outputs on the same episode."""
    images = [made[0][0][:support], *(x[support:] for x, _ in made)]
    targets = [made[0][1][:support], *(y[support:] for _, y in made)]
    return torch.cat(images), torch.cat(targets)
