"""Stage: the initialization each arm starts its fine-tune from.

The main arm is `meta_algo` (meta-trained here unless it has no algorithm); with
`compare_baselines`, every node of `baselines` (meta_algo configs composed there: scratch and
pretrain) starts from the same random weights and runs its own algorithm, if any.
"""

from __future__ import annotations

import copy
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf
from torch.utils.tensorboard import SummaryWriter

from metaaug import distributed, hardware
from metaaug.config import build
from metaaug.data.target import Data
from metaaug.data.tasks import TaskSampler
from metaaug.errors import Diverged, UserError
from metaaug.io.checkpoint import load, save_atomic
from metaaug.models.conditioning import conditioning
from metaaug.models.gan import GAN
from metaaug.pipeline.resume import checkpoint_of, stamp, verified_state
from metaaug.pipeline.settings import RunContext
from metaaug.precision import Precision
from metaaug.training.meta_loop import Evaluate, MetaTraining, Validation, meta_train

log = logging.getLogger("metaaug.train")


@dataclass
class Initializations:
    """arm name -> initialization, the main (meta-learned) arm first; timing figures; the main
    arm's validation metrics (meta-iteration -> mean over the meta-val classes)."""

    arms: dict[str, GAN]
    main: str
    timing: dict[str, float] = field(default_factory=dict)
    validation: dict[int, dict[str, float]] = field(default_factory=dict)


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


def run_algorithm(
    cfg: DictConfig,
    prefix: str,
    data: Data,
    init: GAN,
    evaluate: Evaluate,
    writer: SummaryWriter,
    ckpt_dir: Path,
    device: torch.device,
    prec: Precision,
    tag: str = "",
) -> MetaTraining:
    """Run the meta-algorithm of the meta_algo node at `prefix` (`meta_algo`, or a baseline's
    `baselines.<name>`) on `init` in place. `tag` marks a baseline (no validation, own log
    tags). With `resume`, the main arm continues from that checkpoint and a baseline from its
    own beside it, where there is one (`resume.checkpoint_of`).

    On divergence with `guard.on_divergence=rollback`, the last good state (`last.pt`, else
    the starting weights) is restored and meta-training goes on from there with its learning
    rates times `guard.lr_factor` and fresh optimizer state, at most `guard.max_rollbacks`
    times; otherwise, and after the last retry, the `Diverged` error stands.
    """
    guard = build.guard(cfg)
    restore = None
    path = checkpoint_of(cfg, prefix, ckpt_dir)
    if path is not None:
        restore = verified_state(cfg, data.split, device, prefix, path)
        log.info("%s resumed from %s at meta-iteration %d", prefix, path,
                 int(restore["iteration"]))  # fmt: skip
    # where a rollback may go back to, last resort: the start (the resumed state, if any)
    start = restore if restore is not None else {"gan": copy.deepcopy(init.state_dict())}
    # checkpoints record the run as asked, so that a resume with its overrides is accepted
    recorded = stamp(cfg, data.split, prefix)

    def attempt() -> MetaTraining:
        return _run_once(cfg, OmegaConf.select(cfg, prefix), data, init, evaluate, writer,
                         ckpt_dir, device, prec, tag, restore, recorded)  # fmt: skip

    def rollback(err: Diverged, n: int) -> None:
        nonlocal cfg, restore
        cfg = build.lowered(cfg, prefix, guard.lr_factor)
        # each retry goes further back: a finite state can already be far off (huge weights
        # one step before the NaN), so the last checkpoint, the one before it, then the start
        saved = [p for p in (ckpt_dir / "last.pt", ckpt_dir / "last.pt.prev") if p.is_file()]
        state = load(saved[n], map_location=device) if n < len(saved) else start
        # fresh optimizer state at the lower rates (a saved one would restore the old rate)
        restore = {k: v for k, v in state.items() if k != "algorithm"}
        if "iteration" not in restore:  # the random start: only weights to restore
            init.load_state_dict(restore["gan"])
            restore = None
        at = int(restore["iteration"]) if restore else 0
        log.warning(
            "guard: %s; rollback %d of %d to meta-iteration %d, %s learning rates x%g",
            err, n + 1, guard.max_rollbacks, at, prefix, guard.lr_factor,
        )  # fmt: skip

    return guard.run(attempt, "learning rates", rollback)


def _run_once(
    cfg: DictConfig,
    meta: DictConfig,
    data: Data,
    init: GAN,
    evaluate: Evaluate,
    writer: SummaryWriter,
    ckpt_dir: Path,
    device: torch.device,
    prec: Precision,
    tag: str,
    restore: dict[str, Any] | None,
    recorded: dict[str, Any],
) -> MetaTraining:
    """Build the algorithm of `meta`, its sampler and validation; continue from the training
    state `restore` (weights, iteration, random states, and the algorithm's state if it
    holds one) or start afresh."""
    adv = build.adversarial(cfg)
    algo = build.meta_algorithm(meta, cfg, adv, prec)
    rng = hardware.generator(cfg.seed)
    # classes per task: the class-conditional GAN's `gan.ways`, unless the algorithm sets it
    ways = int(meta.get("ways", cfg.gan.get("ways", 1)))
    if ways > 1 and not conditioning(init.generator).multi_class:
        raise UserError(
            f"an image-conditioned GAN learns from one class per task, but ways={ways}; "
            "drop meta_algo.ways / gan.ways"
        )
    sampler = TaskSampler(
        data.classes, data.split.train, int(meta.support), int(meta.query), seed=cfg.seed,
        ways=ways,
    )  # fmt: skip
    start = 0
    if restore is not None:
        try:
            init.load_state_dict(restore["gan"])
        except RuntimeError as err:  # another architecture: missing keys or other shapes
            first = str(err).splitlines()[1].strip() if "\n" in str(err) else str(err)
            raise UserError(
                f"resume='{cfg.resume}' holds another GAN architecture ({first}); resume with "
                "the checkpoint's gan settings"
            ) from None
        if "algorithm" in restore:
            algo.load_state_dict(restore["algorithm"])
        rng.set_state(restore["rng"])
        sampler.generator.set_state(restore["sampler_rng"])
        start = int(restore["iteration"])
    val_classes = [data.references[name] for name in data.split.val[: int(cfg.validation.classes)]]
    validation = Validation(
        every=int(cfg.validation.every),
        classes=val_classes,
        steps=int(cfg.validation.steps),
        num_images=int(cfg.validation.num_images),
        optimizer=build.optimizer(cfg.finetune.optimizer),
        adversarial=adv,
        augment=build.augment(cfg),
        evaluate=evaluate,
        seed=cfg.seed,
        precision=prec,
    )
    return meta_train(
        init,
        algo,
        sampler,
        iterations=int(meta.iterations),
        meta_batch_size=int(meta.meta_batch_size),
        rng=rng,
        writer=writer,
        validation=validation if cfg.validation.every > 0 and val_classes and not tag else None,
        checkpoint_dir=ckpt_dir,
        checkpoint_every=int(cfg.checkpoint.every),
        start=start,
        progress=build.progress(cfg),
        tag=tag,
        stamp=recorded,
        history=dict(restore.get("validation", {})) if restore is not None else None,
        # a run stopped in a baseline resumes through the main arm's checkpoint
        resume_with=ckpt_dir.parent / "last.pt" if tag else None,
    )


def _trains(meta: DictConfig) -> bool:
    return meta.algorithm is not None and int(meta.iterations) > 0


def validates(cfg: DictConfig) -> bool:
    """Whether the main arm is validated on meta-val classes while it meta-trains."""
    v = cfg.validation
    return _trains(cfg.meta_algo) and int(v.every) > 0 and int(v.classes) > 0


def initializations(cfg: DictConfig, ctx: RunContext) -> Initializations:
    """Meta-train `ctx.init` in place (saved as `checkpoints/meta_init.pt`) and, with
    `compare_baselines`, build each baseline from a copy of its random weights."""
    data, init, ckpt_dir = ctx.data, ctx.init, ctx.paths.checkpoints
    random_init = copy.deepcopy(init)  # the baselines start where meta-training did
    main = str(cfg.meta_algo.name)
    out = Initializations({main: init}, main)
    if _trains(cfg.meta_algo):
        trained = run_algorithm(cfg, "meta_algo", data, init, ctx.evaluate, ctx.writer, ckpt_dir,
                                ctx.device, ctx.precision)  # fmt: skip
        distributed.leave()  # the ranks > 0 are done
        out.timing |= trained.timing
        out.validation = trained.validation
    save_atomic(
        {"kind": "meta_init", "gan": init.state_dict(), "meta_algo": main,
         "config_hash": ctx.record["config_hash"], "config": ctx.config,
         # the classes this initialization learned from: `fewshot` refuses to test on them
         "classes": {"train": list(data.split.train)}},
        ckpt_dir / "meta_init.pt",
    )  # fmt: skip
    if not cfg.compare_baselines or not data.targets:  # no target: nothing to compare on
        return out
    for name, meta in cfg.baselines.items():
        if str(meta.name) == main:
            continue
        gan = copy.deepcopy(random_init)
        if _trains(meta):
            trained = run_algorithm(cfg, f"baselines.{name}", data, gan, ctx.evaluate,
                                    ctx.writer, ckpt_dir / f"baseline_{name}", ctx.device,
                                    ctx.precision, tag=f"baseline/{name}/")  # fmt: skip
            out.timing[f"{name}_s"] = trained.timing["meta_train_s"]
        out.arms[str(name)] = gan
    return out
