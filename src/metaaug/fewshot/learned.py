"""Learned augmentation: magnitudes of rotation, translation and pixel noise meta-learned by
the gradient of the query loss through the inner training loop.

Description:
    The augmentation is reparameterized: with fixed draws u ~ U(-1, 1) and e ~ N(0, 1), an
    image is rotated by `rotate * u` degrees, shifted by `translate * u'` of its side and added
    `noise * e`, all through one differentiable `grid_sample`, so the augmented support set is a
    differentiable function of the magnitudes m = (rotate, translate, noise) (kept positive
    through a softplus).

    Meta-training, on episodes of the meta-train classes only: augment the support set with
    `copies` copies, train a small CNN from its initialization with `inner_steps` SGD steps on
    the augmented set (unrolled, second order), measure the cross-entropy on the episode's
    query set, and move m along -dL_query/dm (Adam). Magnitudes that help a learner generalize
    from the support set to the query set grow; harmful ones shrink. An episode whose
    unrolled fit yields a non-finite loss or gradient moves nothing (its step is skipped and
    counted): one such step would make the magnitudes NaN for good, and every augmented image
    with them.

References:
    Rajendran, Irpan & Jang (2020), "Meta-Learning Requires Meta-Augmentation" and the
    gradient-based augmentation search of Li et al. (2020), "DADA: Differentiable Automatic
    Data Augmentation": augmentation parameters learned by differentiating a validation loss.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from metaaug.augment.classic import ClassicAugment
from metaaug.fewshot.arms import one_hot
from metaaug.fewshot.episodes import Episode, EpisodeSampler
from metaaug.fewshot.learners import sgd_fit, small_cnn


class LearnedAugment(nn.Module):
    """Rotation (degrees), translation (fraction of the side) and noise (std) magnitudes."""

    KEYS = ("rotate", "translate", "noise")

    def __init__(self, rotate: float = 10.0, translate: float = 0.1, noise: float = 0.05) -> None:
        super().__init__()
        start = torch.tensor([rotate, translate, noise], dtype=torch.float32)
        # softplus(raw) starts at the given magnitudes: raw = softplus^-1(m) = log(e^m - 1)
        self.raw = nn.Parameter(start.clamp_min(1e-4).apply_(lambda m: math.log(math.expm1(m))))
        self._warp = ClassicAugment(noise=1.0)  # its pure `apply`, fed our draws

    def magnitudes(self) -> dict[str, Tensor]:
        return dict(zip(self.KEYS, F.softplus(self.raw), strict=True))

    def draws(self, n: int, image_size: int, rng: torch.Generator) -> dict[str, Tensor]:
        def u() -> Tensor:
            return 2 * torch.rand(n, generator=rng) - 1

        e = torch.randn(n, 1, image_size, image_size, generator=rng)
        return {"angle": u(), "shift_x": u(), "shift_y": u(), "pixel_noise": e}

    def forward(self, images: Tensor, draws: dict[str, Tensor]) -> Tensor:
        m = self.magnitudes()
        d = {k: v.to(images.device) for k, v in draws.items()}
        n = images.shape[0]
        params = {
            "angle": d["angle"] * m["rotate"] * math.pi / 180,
            "zoom": images.new_ones(n),
            "flip": images.new_ones(n),
            "shift_x": d["shift_x"] * m["translate"],
            "shift_y": d["shift_y"] * m["translate"],
            "pixel_noise": d["pixel_noise"] * m["noise"],
        }
        return self._warp.apply(images, params)

    def expand(self, episode: Episode, copies: int, rng: torch.Generator) -> tuple[Tensor, Tensor]:
        """The support plus `copies` augmented copies, and their one-hot targets."""
        x, y = episode.support, one_hot(episode.support_labels, episode.ways)
        many = x.repeat(copies, 1, 1, 1)
        augmented = self(many, self.draws(many.shape[0], x.shape[-1], rng))
        return torch.cat([x, augmented]), torch.cat([y, y.repeat(copies, 1)])


def query_loss(
    augment: LearnedAugment,
    net: nn.Module,
    init: dict[str, Tensor],
    episode: Episode,
    copies: int,
    inner_steps: int,
    inner_lr: float,
    rng: torch.Generator,
) -> Tensor:
    """The query cross-entropy of the CNN trained on the augmented support: differentiable in
    the magnitudes through the unrolled training."""
    images, targets = augment.expand(episode, copies, rng)
    params = sgd_fit(net, init, images, targets, inner_steps, inner_lr, create_graph=True)
    logits = torch.func.functional_call(net, params, (episode.query,))
    return F.cross_entropy(logits, episode.query_labels)


def meta_learn_augment(
    episodes: EpisodeSampler,
    start: dict[str, float],
    copies: int,
    iterations: int,
    inner_steps: int,
    inner_lr: float,
    meta_lr: float,
    width: int,
    seed: int,
) -> tuple[LearnedAugment, int]:
    """Meta-learn the magnitudes on `iterations` episodes of `episodes` (meta-train classes).
    Each episode trains a freshly initialized CNN (seeded per episode). Returns the magnitudes
    and how many episodes' steps were skipped as non-finite."""
    augment = LearnedAugment(**start)
    opt = torch.optim.Adam(augment.parameters(), lr=meta_lr)
    skipped = 0
    for it in range(iterations):
        episode = episodes.episode(it)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed * 1_000_003 + it)
            net = small_cnn(
                episode.support.shape[1], episode.support.shape[-1], episode.ways, width
            )
        init = {k: v.detach().requires_grad_(True) for k, v in net.named_parameters()}
        rng = torch.Generator().manual_seed(seed * 1_000_003 + it)
        loss = query_loss(augment, net, init, episode, copies, inner_steps, inner_lr, rng)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if not (torch.isfinite(loss) and torch.isfinite(augment.raw.grad).all()):
            skipped += 1
            continue
        opt.step()
    return augment, skipped


class LearnedArm:
    """The support plus `copies` copies under the meta-learned magnitudes."""

    name = "learned"

    def __init__(self, augment: LearnedAugment, copies: int = 4, skipped: int = 0) -> None:
        self.augment, self.copies = augment, copies
        self.skipped = skipped  # meta-steps skipped as non-finite (meta_learn_augment)

    @classmethod
    def meta_learned(
        cls, episodes: EpisodeSampler, start: dict[str, float], copies: int, iterations: int,
        inner_steps: int, inner_lr: float, meta_lr: float, width: int, seed: int,
    ) -> LearnedArm:  # fmt: skip
        """Meta-learn the magnitudes (`meta_learn_augment`), then augment with them."""
        augment, skipped = meta_learn_augment(
            episodes, dict(start), copies, iterations, inner_steps, inner_lr, meta_lr, width, seed
        )
        return cls(augment, copies, skipped)

    def __call__(self, episode: Episode, rng: torch.Generator) -> tuple[Tensor, Tensor]:
        with torch.no_grad():
            images, targets = self.augment.expand(episode, self.copies, rng)
        return images.clamp(-1, 1), targets
