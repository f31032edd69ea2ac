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
from omegaconf import DictConfig, OmegaConf

from metaaug.config import build, evaluator
from metaaug.config.fewshot_inputs import episode_classes, gan_arm
from metaaug.data.split import ClassSplit
from metaaug.errors import UserError
from metaaug.fewshot.arms import Arm, SyntheticArm
from metaaug.fewshot.episodes import EpisodeSampler
from metaaug.fewshot.learners import Learner
from metaaug.fewshot.trust import PrototypeJudge, Trusted, View

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
        return EpisodeSampler(self.classes, self.split.train, f.ways, f.shots,
                              f.queries, self.cfg.seed + 1,
                              split="meta-train")  # fmt: skip


def _judge(node: DictConfig, ctx: Context) -> PrototypeJudge | None:
    """The node's filter: the episode's prototypes on the protonet backbone (None: no filter)."""
    if not node.get("filter", False):
        return None
    features, _ = evaluator.domain_features(ctx.cfg, ctx.classes, ctx.split, ctx.device)
    return PrototypeJudge(features)


def trusted(arm: Arm, node: DictConfig, ctx: Context) -> Arm:
    """`arm` with its node's `filter` and `weight` (`metaaug.fewshot.trust`), as it is when
    it neither filters nor weighs."""
    weight, judge = float(node.get("weight", 1.0)), _judge(node, ctx)
    if judge is None and weight == 1.0:
        return arm
    how = ", filtered by the episode's prototypes on the protonet backbone" if judge else ""
    log.info("%s arm: generated images weighted %g%s", arm.name, weight, how)
    return Trusted(arm, weight, judge)


def _gan(ctx: Context) -> Arm:
    arm = gan_arm(ctx.cfg, episode_classes(ctx.cfg, ctx.split), ctx.device)
    return trusted(arm, ctx.cfg.arms.gan, ctx)


def _learned(ctx: Context) -> Arm:
    t0 = time.perf_counter()
    arm = build.instantiate(ctx.cfg.arms.learned, episodes=ctx.train_episodes(),
                            seed=ctx.cfg.seed)  # fmt: skip
    shown = ", ".join(f"{k}={v.item():.3g}" for k, v in arm.augment.magnitudes().items())
    log.info("learned arm: %s (meta-learned in %.0f s)", shown, time.perf_counter() - t0)
    if arm.skipped:
        log.warning("learned arm: %d of %d meta-steps skipped, their unrolled fit non-finite "
                    "(lower arms.learned.inner_lr if many are)", arm.skipped,
                    ctx.cfg.arms.learned.iterations)  # fmt: skip
    return arm


def _synthetic(ctx: Context) -> Arm:
    node = ctx.cfg.arms.synthetic
    return trusted(SyntheticArm(ctx.synthetic, node.per_class), node, ctx)


def _protonet(ctx: Context) -> Learner:
    features, info = evaluator.domain_features(ctx.cfg, ctx.classes, ctx.split, ctx.device)
    log.info("protonet backbone: held-out accuracy %.3f on meta-train classes", info["accuracy"])
    return build.instantiate(ctx.cfg.learners.protonet, features=features)


def _maml(ctx: Context) -> Learner:
    t0 = time.perf_counter()
    ds = ctx.cfg.dataset
    learner = build.instantiate(ctx.cfg.learners.maml, episodes=ctx.train_episodes(),
                                channels=ds.channels, image_size=ds.image_size,
                                seed=ctx.cfg.seed, device=str(ctx.device))  # fmt: skip
    log.info("maml learner: meta-trained in %.0f s", time.perf_counter() - t0)
    return learner


ARMS: dict[str, Callable[[Context], Arm]] = {
    "gan": _gan,
    "learned": _learned,
    "synthetic": _synthetic,
}
LEARNERS: dict[str, Callable[[Context], Learner]] = {"protonet": _protonet, "maml": _maml}


def arm(name: str, ctx: Context) -> Arm:
    """The arm `name`: its builder, a view of another arm (a node with `of`), or its config
    node `arms.<name>` as it is."""
    if name in ARMS:
        return ARMS[name](ctx)
    node = ctx.cfg.arms[name]
    if "of" in node:
        return View(name, str(node.of), float(node.get("weight", 1.0)), _judge(node, ctx))
    return build.instantiate(ctx.cfg.arms[name])


def learner(name: str, ctx: Context) -> Learner:
    """The learner `name`: its builder, or its config node `learners.<name>` on the device."""
    if name in LEARNERS:
        return LEARNERS[name](ctx)
    return build.instantiate(ctx.cfg.learners[name], device=str(ctx.device))


def check_names(cfg: DictConfig) -> tuple[list[str], list[str], tuple[str, str]]:
    """The arms and learners a fewshot run names (refused in one line when unknown, or a
    combination `a+b` of arms not listed alone), and the (learner, arm) its objective reads."""
    f = cfg.fewshot
    arm_names = _names(cfg, "arms", cfg.arms)
    learner_names = _names(cfg, "learners", cfg.learners)
    # by default the first learner with the last arm (the candidate, after `none`)
    goal = (str(f.objective.learner or learner_names[0]), str(f.objective.arm or arm_names[-1]))
    if goal[0] not in learner_names or goal[1] not in arm_names:
        raise UserError(
            f"fewshot.objective={goal[0]}/{goal[1]} is not among the learners {learner_names} "
            f"and arms {arm_names}; set fewshot.objective.learner and .arm to ones that run"
        )
    _check_sources(cfg, arm_names)
    if cfg.task is not None and "synthetic" in arm_names:
        raise UserError(
            "fewshot.arms has synthetic, whose images are of dataset classes, but task= gives "
            "classes of your own; drop the synthetic arm (the gan arm adapts to your shots)"
        )
    return arm_names, learner_names, goal


# what only one arm reads (null by default): set without that arm, nothing would read it
SOURCES = (("gan", "arms.gan.checkpoint"), ("synthetic", "fewshot.synthetic_path"))


def _check_sources(cfg: DictConfig, arm_names: list[str]) -> None:
    """Refuse a GAN checkpoint or synthetic folder given while its arm is not listed: the
    run would score no GAN (and never look at the path) yet read as if it had."""
    for arm, key in SOURCES:
        if arm not in arm_names and OmegaConf.select(cfg, key, default=None) is not None:
            raise UserError(
                f"{key} is set but fewshot.arms=[{', '.join(arm_names)}] has no {arm} arm, "
                f"so nothing would read it; add it: 'fewshot.arms=[{','.join(arm_names)},"
                f"{arm}]' (or drop {key})"
            )


def _names(cfg: DictConfig, key: str, known: DictConfig) -> list[str]:
    names = [str(n) for n in cfg.fewshot[key]]
    unknown = [n for n in names if n not in known and not (key == "arms" and "+" in n)]
    if unknown or not names:
        raise UserError(
            f"fewshot.{key}={names}: {', '.join(unknown) or 'empty'}; choose from "
            f"{', '.join(known)}"
        )
    if key == "arms":
        _check_combinations(names, known)
        for name in names:
            base = known[name].get("of") if "+" not in name else None
            if base is not None and (base not in names or "+" in base or "of" in known[base]):
                raise UserError(
                    f"arms.{name}.of={base}: a view needs an arm listed in fewshot.arms that is "
                    f"neither a view nor a combination; e.g. fewshot.arms=[none,{base},{name}]"
                )
    return names


def _check_combinations(names: list[str], known: DictConfig) -> None:
    """An arm `a+b` adds what `a` and `b` add, made by them as listed arms of the run."""
    for name in (n for n in names if "+" in n):
        parts = name.split("+")
        missing = [p for p in parts if p not in names]
        if missing or len(set(parts)) < len(parts) or not all(p in known for p in parts):
            raise UserError(
                f"fewshot.arms has {name}: a combination of distinct arms, each also listed "
                f"on its own (missing: {', '.join(missing) or 'none'}); e.g. "
                "fewshot.arms=[none,classic,gan,classic+gan]"
            )
