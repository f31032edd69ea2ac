"""Stage: the initialization each arm starts its fine-tune from.

The main arm is `meta_algo` (meta-trained here unless it has no algorithm); with
`compare_baselines`, every node of `baselines` (meta_algo configs composed there: scratch and
pretrain) starts from the same random weights and runs its own algorithm, if any. How each
arm meta-trains is a `MetaTrain` (`config/training.py` builds them from the config).
"""

from __future__ import annotations

import copy
import logging
from dataclasses import dataclass, field
from typing import Any

from torch.utils.tensorboard import SummaryWriter

from metaaug import distributed, hardware
from metaaug.errors import Diverged, UserError
from metaaug.io.checkpoint import load, save_atomic
from metaaug.models.gan import GAN
from metaaug.pipeline.settings import ArmPlans, MetaTrain, RunContext
from metaaug.training.meta_loop import MetaTraining, meta_train

log = logging.getLogger("metaaug.train")


@dataclass
class Initializations:
    """arm name -> initialization, the main (meta-learned) arm first; timing figures; the main
    arm's validation metrics (meta-iteration -> mean over the meta-val classes)."""

    arms: dict[str, GAN]
    main: str
    timing: dict[str, float] = field(default_factory=dict)
    validation: dict[int, dict[str, float]] = field(default_factory=dict)


def run_algorithm(plan: MetaTrain, init: GAN, writer: SummaryWriter | None) -> MetaTraining:
    """Meta-train `init` in place as `plan` says, continuing from `plan.resume` if it names a
    checkpoint (verified first).

    On divergence with `guard.on_divergence=rollback`, the last good state (`last.pt`, else
    the starting weights) is restored and meta-training goes on from there with its learning
    rates times `guard.lr_factor` and fresh optimizer state, at most `guard.max_rollbacks`
    times; otherwise, and after the last retry, the `Diverged` error stands.
    """
    guard, ckpt_dir = plan.guard, plan.checkpoint_dir
    device = next(init.parameters()).device
    restore = None
    if plan.resume is not None:
        restore = plan.verify(plan.resume)
        log.info("%s resumed from %s at meta-iteration %d", plan.arm, plan.resume,
                 int(restore["iteration"]))  # fmt: skip
    # where a rollback may go back to, last resort: the start (the resumed state, if any)
    start = restore if restore is not None else {"gan": copy.deepcopy(init.state_dict())}
    rollbacks = 0

    def attempt() -> MetaTraining:
        return _run_once(plan, init, writer, restore, rollbacks)

    def rollback(err: Diverged, n: int) -> None:
        nonlocal restore, rollbacks
        rollbacks = n + 1
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
            err, n + 1, guard.max_rollbacks, at, plan.arm, guard.lr_factor,
        )  # fmt: skip

    return guard.run(attempt, "learning rates", rollback)


def _run_once(
    plan: MetaTrain,
    init: GAN,
    writer: SummaryWriter | None,
    restore: dict[str, Any] | None,
    rollbacks: int,
) -> MetaTraining:
    """The algorithm after `rollbacks` rollbacks and a fresh sampler; continue from the
    training state `restore` (weights, iteration, random states, and the algorithm's state if
    it holds one) or start afresh."""
    algo = plan.algorithm(rollbacks)
    rng = hardware.generator(plan.seed)
    sampler = plan.sampler()
    start = 0
    if restore is not None:
        try:
            init.load_state_dict(restore["gan"])
        except RuntimeError as err:  # another architecture: missing keys or other shapes
            first = str(err).splitlines()[1].strip() if "\n" in str(err) else str(err)
            raise UserError(
                f"resume='{plan.resume}' holds another GAN architecture ({first}); resume "
                "with the checkpoint's gan settings"
            ) from None
        if "algorithm" in restore:
            algo.load_state_dict(restore["algorithm"])
        # the random states are CPU generators': on the CPU whatever device the file is read to
        rng.set_state(restore["rng"].cpu())
        sampler.generator.set_state(restore["sampler_rng"].cpu())
        start = int(restore["iteration"])
    return meta_train(
        init,
        algo,
        sampler,
        iterations=plan.iterations,
        meta_batch_size=plan.meta_batch_size,
        rng=rng,
        writer=writer,  # type: ignore[arg-type]  # (None on a rank > 0, which writes nothing)
        validation=plan.validation,
        checkpoint_dir=plan.checkpoint_dir,
        checkpoint_every=plan.checkpoint_every,
        start=start,
        progress=plan.progress,
        tag=plan.tag,
        stamp=plan.stamp,
        history=dict(restore.get("validation", {})) if restore is not None else None,
        # a run stopped in a baseline resumes through the main arm's checkpoint
        resume_with=plan.checkpoint_dir.parent / "last.pt" if plan.tag else None,
    )


def initializations(ctx: RunContext, plans: ArmPlans) -> Initializations:
    """Meta-train `ctx.init` in place (saved as `checkpoints/meta_init.pt`) and build each
    baseline from a copy of its random weights."""
    data, init = ctx.data, ctx.init
    random_init = copy.deepcopy(init)  # the baselines start where meta-training did
    out = Initializations({plans.main: init}, plans.main)
    if plans.main_training is not None:
        trained = run_algorithm(plans.main_training, init, ctx.writer)
        distributed.leave()  # the ranks > 0 are done
        out.timing |= trained.timing
        out.validation = trained.validation
    term = ctx.finetune.adversarial.class_loss
    save_atomic(
        {"kind": "meta_init", "gan": init.state_dict(), "meta_algo": plans.main,
         "config_hash": ctx.record["config_hash"], "config": ctx.config,
         # the classes this initialization learned from: `fewshot` refuses to test on them
         "classes": {"train": list(data.split.train)},
         # gan.class_loss's term, for whoever adapts this initialization later
         **({"class_loss": term.state()} if term is not None else {})},
        ctx.paths.checkpoints / "meta_init.pt",
    )  # fmt: skip
    for name, plan in plans.baselines.items():
        gan = copy.deepcopy(random_init)
        if plan is not None:
            trained = run_algorithm(plan, gan, ctx.writer)
            out.timing[f"{name}_s"] = trained.timing["meta_train_s"]
        out.arms[name] = gan
    return out
