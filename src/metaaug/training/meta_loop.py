"""The flat meta-training loop: sample tasks, meta-step, log, validate, checkpoint."""

from __future__ import annotations

import copy
import logging
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor
from torch.utils._pytree import tree_map
from torch.utils.tensorboard import SummaryWriter
from tqdm import tqdm

from metaaug import distributed
from metaaug.data.target import Target
from metaaug.data.tasks import TaskSampler
from metaaug.errors import Interrupted
from metaaug.io.checkpoint import save_atomic
from metaaug.io.synthetic import grid
from metaaug.meta.adapt import adapt, sample
from metaaug.meta.base import MetaAlgorithm
from metaaug.meta.settings import Adversarial, Augment, OptimizerSpec
from metaaug.metrics.names import REPORTED
from metaaug.models.gan import GAN
from metaaug.precision import FP32, Precision
from metaaug.training.guard import check_step, non_finite_quantity
from metaaug.training.signals import deferred_signals

log = logging.getLogger(__name__)

Evaluate = Callable[[Tensor, Target], dict[str, float]]  # (fake, the class it should show)


@dataclass(frozen=True)
class Validation:
    """Adapt copies of the initialization to meta-val classes and measure the result."""

    every: int
    classes: list[Target]  # meta-val classes: their shots and held-out images
    steps: int
    num_images: int
    optimizer: OptimizerSpec
    adversarial: Adversarial
    augment: Augment | None
    evaluate: Evaluate
    seed: int
    precision: Precision = FP32


def validate(init: GAN, val: Validation, writer: SummaryWriter, step: int) -> dict[str, float]:
    """Mean metrics over the validation classes; logs a real-vs-generated grid per class.

    The noise and the adaptation are seeded identically at every validation, so grids and
    numbers are comparable across meta-iterations.
    """
    totals: dict[str, float] = {}
    for i, target in enumerate(val.classes):
        shots = target.shots
        rng = torch.Generator().manual_seed(val.seed + i)
        gan = copy.deepcopy(init)
        device = next(gan.parameters()).device
        adapt(
            gan,
            shots.to(device),
            val.steps,
            val.optimizer,
            val.adversarial,
            rng,
            augment=val.augment,
            precision=val.precision,
        )
        bad = non_finite_quantity({}, gan)
        if bad is not None:
            # the meta-training state is fine; this class's fine-tune at this lr is not
            log.warning("validation at meta-iteration %d: the fine-tune on %s diverged (%s); "
                        "its metrics are NaN", step, target.class_name, bad)  # fmt: skip
            totals.update(dict.fromkeys(REPORTED, float("nan")))
            continue
        fake = sample(gan, val.num_images, torch.Generator().manual_seed(val.seed), shots=shots)
        k = shots.shape[0]
        image = grid(torch.cat([shots.cpu(), fake[: 4 * k]]), k)
        writer.add_image(f"val/{target.class_name}", image, step)
        for key, value in val.evaluate(fake, target).items():
            totals[key] = totals.get(key, 0.0) + value / len(val.classes)
    for key in REPORTED:
        if key in totals:
            writer.add_scalar(f"val/{key}", totals[key], step)
    return totals


def training_state(
    gan: GAN, algo: MetaAlgorithm, sampler: TaskSampler, iteration: int, rng: torch.Generator
) -> dict[str, Any]:
    """Everything a resumed run needs to continue exactly where this one stopped."""
    return {
        "kind": "training_state",
        "gan": gan.state_dict(),
        "algorithm": algo.state_dict(),
        "iteration": iteration,
        "rng": rng.get_state(),
        "sampler_rng": sampler.generator.get_state(),
    }


def _from_rank0(
    gan: GAN, algo: MetaAlgorithm, sampler: TaskSampler, start: int, rng: torch.Generator
) -> int:
    """Take rank 0's training state (what it resumed or rolled back to); returns its iteration."""
    mine = training_state(gan, algo, sampler, start, rng)
    state = distributed.world().from_rank0(
        tree_map(lambda x: x.cpu() if isinstance(x, Tensor) else x, mine)
    )
    # weights and optimizer states onto this rank's device; the random states stay on the CPU
    device = next(gan.parameters()).device
    state = tree_map(
        lambda x: x.to(device) if isinstance(x, Tensor) and x.is_floating_point() else x, state
    )
    gan.load_state_dict(state["gan"])
    algo.load_state_dict(state["algorithm"])
    rng.set_state(state["rng"])
    sampler.generator.set_state(state["sampler_rng"])
    return int(state["iteration"])


@dataclass
class MetaTraining:
    """What a meta-training run reports: timing figures and every validation's metrics."""

    timing: dict[str, float]
    validation: dict[int, dict[str, float]]  # meta-iteration -> mean over validation classes


def meta_train(
    gan: GAN,
    algo: MetaAlgorithm,
    sampler: TaskSampler,
    *,
    iterations: int,
    meta_batch_size: int,
    rng: torch.Generator,
    writer: SummaryWriter,
    validation: Validation | None,
    checkpoint_dir: Path,
    checkpoint_every: int,
    start: int = 0,
    progress: bool = False,
    tag: str = "",
    stamp: dict[str, Any] | None = None,
    history: dict[int, dict[str, float]] | None = None,
    resume_with: Path | None = None,
) -> MetaTraining:
    """Run meta-iterations `start..iterations-1` on `gan` in place; returns its timing figures
    and validation metrics (validated every `validation.every` iterations and at the end).

    `tag` prefixes every TensorBoard tag (a baseline's own meta-training logs apart); `stamp`
    joins every checkpoint (what defines the run, for a verified resume), and so does the
    validation history (`history`: what a resumed run validated before it stopped).

    A non-finite loss or weight raises `Diverged` before anything non-finite is written
    (`checkpoints/last.pt` keeps the last good state, `last.pt.prev` the one before it).
    SIGTERM or SIGINT saves `last.pt` at the current iteration and raises `Interrupted`,
    whose message names the checkpoint to resume the run with (`resume_with`, default
    `last.pt`: a baseline's run resumes through the main arm's checkpoint).

    With `hardware.distributed`, the main arm's meta-batches split across the ranks (a
    baseline's, `tag`, do not); every rank starts from rank 0's state and stops at the same
    iteration, and rank 0 alone validates, logs and checkpoints (`metaaug.distributed`).
    """
    main = distributed.is_main()
    last = checkpoint_dir / "last.pt"

    def save(done: int) -> None:
        if not main:
            return
        state = training_state(gan, algo, sampler, done, rng) | (stamp or {})
        state["validation"] = dict(history)
        save_atomic(state, last, keep_previous=True)

    def last_good() -> str:
        if last.is_file():
            return f"the last good checkpoint is {last}"
        return "no checkpoint was written yet"

    t0 = time.perf_counter()
    val_s = 0.0
    history = dict(history or {})
    desc = f"{tag}{algo.name}"
    sharing = distributed.sharing(meta_batch_size, enabled=not tag)
    with deferred_signals() as signalled, sharing as world:
        if world.size > 1:
            start = _from_rank0(gan, algo, sampler, start, rng)
        if 0 < start == iterations:  # resumed at its end: this run's own last.pt still
            save(start)  # names it, so that a stop in a later arm resumes through it
        bar = tqdm(range(start, iterations), desc=desc, disable=not (progress and main),
                   leave=False)  # fmt: skip
        for it in bar:
            logs = algo.meta_step(gan, sampler.sample(meta_batch_size), rng)
            done = it + 1
            check_step(f"{tag}meta-iteration {done} ({algo.name})", logs, gan, last_good())
            if main:
                writer.add_scalar(f"{tag}loss/D", logs.pop("loss_D"), it)
                writer.add_scalar(f"{tag}loss/G", logs.pop("loss_G"), it)
                for key, value in logs.items():
                    writer.add_scalar(f"{tag}meta/{key}", value, it)
            due = validation is not None and (done % validation.every == 0 or done == iterations)
            if main and due:
                tv = time.perf_counter()
                metrics = history[done] = validate(gan, validation, writer, done)
                val_s += time.perf_counter() - tv
                shown = ", ".join(f"{k}={metrics[k]:.4g}" for k in REPORTED if k in metrics)
                log.info("validation at meta-iteration %d: %s", done, shown)
            stop = world.agree(signalled())  # every rank stops at the same iteration
            if done % checkpoint_every == 0 or done == iterations or stop:
                save(done)
            if stop:
                name = signal.Signals(stop).name
                raise Interrupted(
                    f"{name} at {tag}meta-iteration {done}: saved {last}; continue with "
                    f"resume={resume_with or last} and the same overrides",
                    stop,
                )
    elapsed = time.perf_counter() - t0
    stepping = elapsed - val_s
    figures = {
        "meta_train_s": elapsed,
        "validation_s": val_s,
        # meta-iterations per second of meta-training alone, validation excluded
        "meta_it_per_s": (iterations - start) / stepping if stepping > 0 else 0.0,
    }
    for key, value in figures.items() if main else ():
        writer.add_scalar(f"{tag}time/{key}", value, iterations)
    return MetaTraining(figures, history)
