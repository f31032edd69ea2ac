"""The settings each stage of `pipeline/` takes: plain frozen dataclasses that
`config/build.py` makes from the config, so that no stage reads the config itself."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch.utils.tensorboard import SummaryWriter

from metaaug.data.target import Data
from metaaug.data.tasks import TaskSampler
from metaaug.meta.base import MetaAlgorithm
from metaaug.meta.settings import Adversarial, Augment, OptimizerSpec
from metaaug.metrics.fidelity import ClassFidelity
from metaaug.models.gan import GAN
from metaaug.pipeline.outputs import RunPaths
from metaaug.precision import Precision
from metaaug.training.guard import Guard
from metaaug.training.meta_loop import Evaluate, Validation


@dataclass(frozen=True)
class Finetune:
    """How an arm adapts to a target's shots (`config.build.finetune`): `steps` rounds of the
    `optimizer` with the run's `adversarial` loss, `augment`ation and `precision`, batches of
    `batch_size` shots (None: all), noise seed `seed` + 1 (the same for every arm and
    target); measured after each step of `eval_steps`; `guard` on divergence."""

    steps: int
    optimizer: OptimizerSpec
    adversarial: Adversarial
    batch_size: int | None
    augment: Augment | None
    eval_steps: frozenset[int]
    seed: int
    guard: Guard
    precision: Precision


@dataclass(frozen=True)
class Sampling:
    """`generate.num_images` images per arm and target in batches of `batch_size`, drawn with
    the noise of a run with `seed` (`pipeline.generate.noise_seed`)."""

    num_images: int
    batch_size: int
    seed: int


@dataclass(frozen=True)
class Objective:
    """What a run returns to a sweep: metric `name`, measured on the targets' mean or on the
    last validation (`on`: targets or validation)."""

    name: str
    on: str


@dataclass
class RunContext:
    """What every stage of one train run shares, built once from the config
    (`config.context.prepare`): where it writes, what it computes on, its data and random
    initialization, how it adapts, samples and measures, and what its report records."""

    paths: RunPaths
    device: torch.device
    data: Data
    init: GAN  # the random weights every arm starts from (meta-trained in place)
    precision: Precision
    evaluate: Evaluate
    fidelity: ClassFidelity
    finetune: Finetune
    sampling: Sampling
    objective: Objective
    writer: SummaryWriter
    # plain facts of the run for metrics.json, manifests and checkpoints (`config.context`)
    record: dict[str, Any] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)  # the resolved config, for checkpoints


@dataclass(frozen=True)
class MetaTrain:
    """How one arm meta-trains (`config.training.plan`): its config node `arm` (`meta_algo`,
    or a baseline's `baselines.<name>`), with log tags under `tag` (a baseline's own); the
    algorithm after a number of rollbacks (each lowers its learning rates); a fresh seeded
    task sampler; the loop's lengths and checkpoints; the validation (the main arm only); the
    checkpoint it resumes from, `verify` reading a checkpoint's state for this arm (refused in
    one line when it is not this run's), and the `stamp` its checkpoints record."""

    arm: str
    tag: str
    algorithm: Callable[[int], MetaAlgorithm]
    sampler: Callable[[], TaskSampler]
    iterations: int
    meta_batch_size: int
    seed: int
    validation: Validation | None
    checkpoint_dir: Path
    checkpoint_every: int
    progress: bool
    guard: Guard
    resume: Path | None
    verify: Callable[[Path], dict[str, Any]]
    stamp: dict[str, Any]


@dataclass(frozen=True)
class ArmPlans:
    """The initializations a run compares: the main arm's name and meta-training (None: no
    algorithm or no iterations), and each baseline's by name (None: its random weights as
    they are; no baselines without `compare_baselines` or without targets)."""

    main: str
    main_training: MetaTrain | None
    baselines: dict[str, MetaTrain | None]
