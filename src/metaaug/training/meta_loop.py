"""The flat meta-training loop: sample tasks, meta-step, log, validate, checkpoint."""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor
from torch.utils.tensorboard import SummaryWriter
from tqdm import tqdm

from metaaug.data.target import Target
from metaaug.data.tasks import TaskSampler
from metaaug.io.checkpoint import save_atomic
from metaaug.io.images import grid
from metaaug.meta.adapt import adapt, sample
from metaaug.meta.base import MetaAlgorithm
from metaaug.meta.settings import Adversarial, Augment, OptimizerSpec
from metaaug.models.gan import GAN
from metaaug.precision import FP32, Precision

log = logging.getLogger(__name__)

Evaluate = Callable[[Tensor, Target], dict[str, float]]  # (fake, the class it should show)

# what validation logs and prints, the class fidelity first
SHOWN = ("fidelity", "ceiling", "memorization", "fid", "kid", "is")


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
        fake = sample(gan, val.num_images, torch.Generator().manual_seed(val.seed), shots=shots)
        k = shots.shape[0]
        image = grid(torch.cat([shots.cpu(), fake[: 4 * k]]), k)
        writer.add_image(f"val/{target.class_name}", image, step)
        for key, value in val.evaluate(fake, target).items():
            totals[key] = totals.get(key, 0.0) + value / len(val.classes)
    for key in SHOWN:
        if key in totals:
            writer.add_scalar(f"val/{key}", totals[key], step)
    return totals


def training_state(
    gan: GAN, algo: MetaAlgorithm, sampler: TaskSampler, iteration: int, rng: torch.Generator
) -> dict[str, Any]:
    """Everything a resumed run needs to continue exactly where this one stopped."""
    return {
        "gan": gan.state_dict(),
        "algorithm": algo.state_dict(),
        "iteration": iteration,
        "rng": rng.get_state(),
        "sampler_rng": sampler.generator.get_state(),
    }


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
) -> MetaTraining:
    """Run meta-iterations `start..iterations-1` on `gan` in place; returns its timing figures
    and validation metrics (validated every `validation.every` iterations and at the end).

    `tag` prefixes every TensorBoard tag (a baseline's own meta-training logs apart).
    """
    t0 = time.perf_counter()
    val_s = 0.0
    history: dict[int, dict[str, float]] = {}
    desc = f"{tag}{algo.name}"
    bar = tqdm(range(start, iterations), desc=desc, disable=not progress, leave=False)
    for it in bar:
        logs = algo.meta_step(gan, sampler.sample(meta_batch_size), rng)
        writer.add_scalar(f"{tag}loss/D", logs.pop("loss_D"), it)
        writer.add_scalar(f"{tag}loss/G", logs.pop("loss_G"), it)
        for key, value in logs.items():
            writer.add_scalar(f"{tag}meta/{key}", value, it)
        done = it + 1
        if validation is not None and (done % validation.every == 0 or done == iterations):
            tv = time.perf_counter()
            metrics = history[done] = validate(gan, validation, writer, done)
            val_s += time.perf_counter() - tv
            shown = ", ".join(f"{k}={metrics[k]:.4g}" for k in SHOWN if k in metrics)
            log.info("validation at meta-iteration %d: %s", done, shown)
        if done % checkpoint_every == 0 or done == iterations:
            save_atomic(training_state(gan, algo, sampler, done, rng), checkpoint_dir / "last.pt")
    elapsed = time.perf_counter() - t0
    stepping = elapsed - val_s
    figures = {
        "meta_train_s": elapsed,
        "validation_s": val_s,
        # meta-iterations per second of meta-training alone, validation excluded
        "meta_it_per_s": (iterations - start) / stepping if stepping > 0 else 0.0,
    }
    for key, value in figures.items():
        writer.add_scalar(f"{tag}time/{key}", value, iterations)
    return MetaTraining(figures, history)
