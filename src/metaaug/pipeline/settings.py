"""The settings each stage of `pipeline/` takes: plain frozen dataclasses that
`config/build.py` makes from the config, so that no stage reads the config itself."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch.utils.tensorboard import SummaryWriter

from metaaug.data.target import Data
from metaaug.meta.settings import Adversarial, Augment, OptimizerSpec
from metaaug.metrics.fidelity import ClassFidelity
from metaaug.models.gan import GAN
from metaaug.pipeline.outputs import RunPaths
from metaaug.precision import Precision
from metaaug.training.guard import Guard
from metaaug.training.meta_loop import Evaluate


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
