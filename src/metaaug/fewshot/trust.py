"""Synthetic images a learner can trust (`arms.gan` and `arms.synthetic`: `filter`, `weight`).

An arm's images after the support are generated: some are of their class, some are not, and a
learner takes both under the class's label. Two remedies, each with its price:

- **filter**: keep a generated image only if a judge that never saw the queries assigns it to
  its own class: the nearest of the episode's prototypes (mean L2-normalized features of each
  class's support images) on the protonet backbone, a classifier of the meta-train classes.
  It removes what is plainly another class; it also removes what the support does not
  already say (an unusual but right drawing), and for protonet, whose backbone the judge is,
  a kept image lies where the support's prototype already points.
- **weight**: the mass of a generated image's target row (real rows have mass 1). The plain
  and MAML learners weigh its loss by it; protonet weighs it in the prototype, which stays
  the mean of the real shots at weight 0. It keeps every image but trusts each less, right or
  wrong alike.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from metaaug.fewshot.arms import Arm
from metaaug.fewshot.episodes import Episode
from metaaug.fewshot.learners import Prototypes
from metaaug.metrics.domain import DomainFeatures

log = logging.getLogger(__name__)


class PrototypeJudge(Prototypes):
    """Assigns images to the nearest prototype of an episode's support classes, in the
    protonet learner's embedding."""

    def keeps(self, episode: Episode, images: Tensor, labels: Tensor) -> Tensor:
        """Which of `images` (of episode slots `labels`) the judge assigns to their own slot."""
        support = self.embed(episode.support)
        one_hot = F.one_hot(episode.support_labels, episode.ways).float()
        prototypes = F.normalize(one_hot.T @ support, dim=1)  # [ways, D]
        return (self.embed(images) @ prototypes.T).argmax(1) == labels.cpu()


class ClassJudge(Prototypes):
    """`metaaug generate filter=true`'s judge: with no episode to compare against, an image of
    a new class is kept when it lies nearer its own shots' prototype than the prototype of
    any other class generated with it or of any `known` class (image sets: the run's
    meta-train classes, whose drawings are what its GAN draws by mistake)."""

    def __init__(self, features: DomainFeatures, known: Sequence[Tensor]) -> None:
        super().__init__(features)
        self.known = torch.stack([self.prototype(images) for images in known])  # [R, D]

    def prototype(self, images: Tensor) -> Tensor:
        """[D]: the direction of the mean embedding of `images`."""
        return F.normalize(self.embed(images).mean(0), dim=0)

    def keeps(self, images: Tensor, shots: dict[str, Tensor], class_name: str) -> Tensor:
        """Which of `images`, drawn for `class_name`, lie nearest that class's `shots`."""
        others = [self.prototype(s) for name, s in shots.items() if name != class_name]
        prototypes = torch.stack([self.prototype(shots[class_name]), *others])
        return (self.embed(images) @ torch.cat([prototypes, self.known]).T).argmax(1) == 0

    def cut(self, sets: dict[str, Tensor], shots: dict[str, Tensor]) -> dict[str, Any]:
        """Each class's images in `sets` cut, in place, to those the judge keeps (a class it
        keeps none of is dropped), judged against the `shots` each was drawn for; returns
        the share kept per class and how many were drawn."""
        kept, drawn = {}, {name: len(images) for name, images in sets.items()}
        for name, images in list(sets.items()):
            keep = self.keeps(images, shots, name)
            kept[name] = int(keep.sum()) / len(keep)
            log.info("%s: the judge kept %d of %d images", name, int(keep.sum()), len(images))
            sets[name] = images[keep]
            if not keep.any():
                log.warning("%s: the judge kept none of its images; none are written", name)
                del sets[name]
        judge = "nearest prototype: the classes drawn and the meta-train classes, on the backbone"
        return {"judge": judge, "drawn": drawn, "kept": kept}


class Trusted:
    """An arm whose generated rows are filtered by `judge` and weighted by `weight` (`view`);
    `kept` is the share the judge kept in the last episode."""

    def __init__(self, arm: Arm, weight: float = 1.0, judge: PrototypeJudge | None = None) -> None:
        self.arm, self.weight, self.judge = arm, weight, judge
        self.name = arm.name
        self.kept: float | None = None

    def view(self, episode: Episode, made: tuple[Tensor, Tensor]) -> tuple[Tensor, Tensor]:
        """An arm's output on `episode` with its generated rows (those after the support)
        filtered by the judge (None: all kept) and weighted by `weight`; `kept` becomes the
        share the judge kept (None without a judge, or when nothing was generated)."""
        images, targets = made
        n = len(episode.support)
        generated, soft = images[n:], targets[n:]
        self.kept = None
        if self.judge is not None and len(generated):
            keep = self.judge.keeps(episode, generated, soft.argmax(1))
            self.kept = float(keep.float().mean())
            generated, soft = generated[keep], soft[keep]
        return torch.cat([images[:n], generated]), torch.cat([targets[:n], self.weight * soft])

    def __call__(self, episode: Episode, rng: torch.Generator) -> tuple[Tensor, Tensor]:
        return self.view(episode, self.arm(episode, rng))


class View(Trusted):
    """Arm `of`'s own images of each episode, filtered and weighted anew (`arms.<name>.of`):
    variants of one arm compared on the very images it made, at no cost of making them again.
    The scoring loop hands it `of`'s output (`view`); it is never called on an episode."""

    def __init__(
        self, name: str, of: str, weight: float = 1.0, judge: PrototypeJudge | None = None
    ) -> None:
        self.name, self.of, self.weight, self.judge = name, of, weight, judge
        self.kept: float | None = None

    def __call__(self, episode: Episode, rng: torch.Generator) -> tuple[Tensor, Tensor]:
        raise TypeError(f"arm {self.name} views arm {self.of}'s images: score() feeds it those")
