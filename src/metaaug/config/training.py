"""Meta-training's settings from the config: one `MetaTrain` per arm that trains (the main
arm's `meta_algo`, each baseline's `baselines.<name>`), and the checks that need the GAN."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf

from metaaug.config import build
from metaaug.config.resume import MAIN, checkpoint_of, stamp, verified_state
from metaaug.data.target import Data
from metaaug.data.tasks import TaskSampler
from metaaug.errors import UserError
from metaaug.meta.base import MetaAlgorithm
from metaaug.models.conditioning import conditioning
from metaaug.models.gan import GAN
from metaaug.pipeline.settings import ArmPlans, Finetune, MetaTrain, RunContext
from metaaug.precision import Precision
from metaaug.training.meta_loop import Evaluate, Validation


def trains(meta: DictConfig) -> bool:
    """Whether a meta_algo node meta-trains at all (scratch has no algorithm)."""
    return meta.algorithm is not None and meta.iterations > 0


def validates(cfg: DictConfig) -> bool:
    """Whether the main arm is validated on meta-val classes while it meta-trains."""
    v = cfg.validation
    return trains(cfg.meta_algo) and v.every > 0 and v.classes > 0


def check_tasks(cfg: DictConfig, data: Data, init: GAN) -> None:
    """The tasks of each arm that meta-trains (as `arm_plans` picks them), refused before the
    evaluator's classifiers train and anything is written, not when the arm starts: classes
    per task the GAN cannot learn from, or more than the meta-train split has, and a class
    with fewer images than support + query."""
    metas = [cfg.meta_algo]
    if cfg.compare_baselines and data.targets:
        others = (cfg.get("baselines") or {}).values()
        metas += [m for m in others if str(m.name) != str(cfg.meta_algo.name)]
    for meta in (m for m in metas if trains(m)):
        ways = _ways(cfg, meta)
        if ways > 1 and not conditioning(init.generator).multi_class:
            raise UserError(
                f"an image-conditioned GAN learns from one class per task, but ways={ways}; "
                "drop meta_algo.ways / gan.ways"
            )
        TaskSampler(data.classes, data.split.train, meta.support, meta.query, seed=cfg.seed,
                    ways=ways)  # fmt: skip


def _ways(cfg: DictConfig, meta: DictConfig) -> int:
    """Classes per task: the class-conditional GAN's `gan.ways`, unless the algorithm sets it."""
    return int(meta.get("ways", cfg.gan.get("ways", 1)))


def check_pairs(cfg: DictConfig, init: GAN, shots: int) -> None:
    """An image-conditioned GAN adapts on pairs of images of one class: 1 shot cannot do it."""
    if shots >= conditioning(init.generator).min_shots(adapting=True):
        return
    validating = cfg.validation.every > 0 and cfg.validation.steps > 0
    busy = [key for key, on in (("finetune.steps", cfg.finetune.steps > 0),
                                ("validation.steps", validating)) if on]  # fmt: skip
    if busy:
        raise UserError(
            f"gan={cfg.gan.name} fine-tunes on pairs of shots but target.shots={shots}; use "
            f"target.shots >= 2, or {' '.join(f'{k}=0' for k in busy)} to generate from the "
            "shot without fine-tuning"
        )


def arm_plans(cfg: DictConfig, ctx: RunContext) -> ArmPlans:
    """How each arm of a train run meta-trains: the main arm, and with `compare_baselines`
    (and targets to compare on) every baseline of another name than the main arm's."""
    main = cfg.meta_algo.name
    checkpoints = ctx.paths.checkpoints
    parts = Parts(ctx.data, ctx.init, ctx.device, ctx.precision, ctx.evaluate, ctx.finetune)
    main_training = plan(cfg, MAIN, parts, checkpoints) if trains(cfg.meta_algo) else None
    baselines: dict[str, MetaTrain | None] = {}
    if cfg.compare_baselines and ctx.data.targets:  # no target: nothing to compare on
        for name, meta in cfg.baselines.items():
            if str(meta.name) == main:
                continue
            baselines[str(name)] = plan(
                cfg, f"baselines.{name}", parts, checkpoints / f"baseline_{name}"
            ) if trains(meta) else None  # fmt: skip
    return ArmPlans(main, main_training, baselines)


@dataclass(frozen=True)
class Parts:
    """What meta-training takes from a run's context (a rank > 0 of a distributed run
    builds these alone)."""

    data: Data
    init: GAN
    device: torch.device
    precision: Precision
    evaluate: Evaluate
    finetune: Finetune


def plan(cfg: DictConfig, arm: str, ctx: Parts, checkpoint_dir: Path) -> MetaTrain:
    """How the arm whose meta_algo node is at `arm` meta-trains the run's initialization,
    checkpointing under `checkpoint_dir`. With `resume`, the main arm continues from that
    checkpoint and a baseline from its own beside it, where there is one
    (`resume.checkpoint_of`). Its losses (and class term) are the fine-tune's."""
    meta = OmegaConf.select(cfg, arm)
    data, prec = ctx.data, ctx.precision
    adv = ctx.finetune.adversarial
    guard = build.guard(cfg)
    ways = _ways(cfg, meta)  # checked with the data (`check_tasks`)

    def algorithm(rollbacks: int) -> MetaAlgorithm:
        lowered = cfg
        for _ in range(rollbacks):  # each rollback lowers the rates of the one before
            lowered = build.lowered(lowered, arm, guard.lr_factor)
        return build.meta_algorithm(OmegaConf.select(lowered, arm), lowered, adv, prec)

    def sampler() -> TaskSampler:
        return TaskSampler(data.classes, data.split.train, meta.support, meta.query,
                           seed=cfg.seed, ways=ways)  # fmt: skip

    def verify(path: Path) -> dict[str, Any]:
        return verified_state(cfg, data.split, ctx.device, arm, path)

    tag = "" if arm == MAIN else f"baseline/{arm.removeprefix('baselines.')}/"
    return MetaTrain(
        arm=arm, tag=tag, algorithm=algorithm, sampler=sampler,
        iterations=meta.iterations, meta_batch_size=meta.meta_batch_size,
        seed=cfg.seed, validation=None if tag else validation(cfg, ctx),
        checkpoint_dir=checkpoint_dir, checkpoint_every=cfg.checkpoint.every,
        progress=build.progress(cfg), guard=guard,
        resume=checkpoint_of(cfg, arm, checkpoint_dir), verify=verify,
        # checkpoints record the run as asked, so that a resume with its overrides is accepted
        stamp=stamp(cfg, data.split, arm),
    )  # fmt: skip


def validation(cfg: DictConfig, ctx: Parts) -> Validation | None:
    """The main arm's validation on the first `validation.classes` meta-val classes (None
    when `validation.every` is 0 or the split has no meta-val class), fine-tuning with the
    run's losses."""
    v = cfg.validation
    classes = [ctx.data.references[name] for name in ctx.data.split.val[: v.classes]]
    if v.every <= 0 or not classes:
        return None
    return Validation(
        every=v.every, classes=classes, steps=v.steps, num_images=v.num_images,
        optimizer=build.optimizer(cfg.finetune.optimizer), adversarial=ctx.finetune.adversarial,
        augment=build.augment(cfg), evaluate=ctx.evaluate, seed=cfg.seed, precision=ctx.precision,
    )  # fmt: skip
