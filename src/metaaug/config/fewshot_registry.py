"""The arms and learners of `metaaug fewshot`, by name: config -> objects.

Most arms and learners are their config node alone (`arms.classic`, `learners.plain`: a
`_target_` and its arguments, built by `build.instantiate`). Those that need what the command
has built (the class split, the device, episodes of the meta-train classes, a `metaaug train`
run's outputs) have a builder here, registered under their name; a new arm of either kind is
a config node, plus a builder when it needs the run's context.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from omegaconf import DictConfig

from metaaug.config import build
from metaaug.config.fewshot_inputs import gan_arm
from metaaug.data.split import ClassSplit
from metaaug.fewshot.arms import Arm, SyntheticArm
from metaaug.fewshot.episodes import EpisodeSampler
from metaaug.fewshot.learners import Learner

log = logging.getLogger("metaaug.fewshot")


@dataclass
class Context:
    """What the command has built that an arm or learner may need."""

    cfg: DictConfig
    classes: dict[str, torch.Tensor]
    split: ClassSplit
    device: torch.device
    synthetic: dict[str, torch.Tensor] = field(default_factory=dict)  # the synthetic arm's

    def train_episodes(self) -> EpisodeSampler:
        """Episodes of the meta-train classes, for what is meta-learned here (MAML's
        initialization, the learned augmentation); never the meta-test classes."""
        f = self.cfg.fewshot
        return EpisodeSampler(self.classes, self.split.train, int(f.ways), int(f.shots),
                              int(f.queries), int(self.cfg.seed) + 1,
                              split="meta-train")  # fmt: skip


def _gan(ctx: Context) -> Arm:
    return gan_arm(ctx.cfg, list(ctx.split.test), ctx.device)


def _learned(ctx: Context) -> Arm:
    t0 = time.perf_counter()
    arm = build.instantiate(ctx.cfg.arms.learned, episodes=ctx.train_episodes(),
                            seed=int(ctx.cfg.seed))  # fmt: skip
    shown = ", ".join(f"{k}={v.item():.3g}" for k, v in arm.augment.magnitudes().items())
    log.info("learned arm: %s (meta-learned in %.0f s)", shown, time.perf_counter() - t0)
    return arm


def _synthetic(ctx: Context) -> Arm:
    return SyntheticArm(ctx.synthetic, int(ctx.cfg.arms.synthetic.per_class))


def _protonet(ctx: Context) -> Learner:
    features, info = build.domain_features(ctx.cfg, ctx.classes, ctx.split, ctx.device)
    log.info("protonet backbone: held-out accuracy %.3f on meta-train classes", info["accuracy"])
    return build.instantiate(ctx.cfg.learners.protonet, features=features)


def _maml(ctx: Context) -> Learner:
    t0 = time.perf_counter()
    ds = ctx.cfg.dataset
    learner = build.instantiate(ctx.cfg.learners.maml, episodes=ctx.train_episodes(),
                                channels=int(ds.channels), image_size=int(ds.image_size),
                                seed=int(ctx.cfg.seed), device=str(ctx.device))  # fmt: skip
    log.info("maml learner: meta-trained in %.0f s", time.perf_counter() - t0)
    return learner


ARMS: dict[str, Callable[[Context], Arm]] = {
    "gan": _gan,
    "learned": _learned,
    "synthetic": _synthetic,
}
LEARNERS: dict[str, Callable[[Context], Learner]] = {"protonet": _protonet, "maml": _maml}


def arm(name: str, ctx: Context) -> Arm:
    """The arm `name`: its builder, or its config node `arms.<name>` as it is."""
    if name in ARMS:
        return ARMS[name](ctx)
    return build.instantiate(ctx.cfg.arms[name])


def learner(name: str, ctx: Context) -> Learner:
    """The learner `name`: its builder, or its config node `learners.<name>` on the device."""
    if name in LEARNERS:
        return LEARNERS[name](ctx)
    return build.instantiate(ctx.cfg.learners[name], device=str(ctx.device))
