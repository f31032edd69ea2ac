"""What scripts/bench_meta.py and scripts/bench_meta_memory.py share: the plan of a run, the
vmap-fallback log, torch's settings, the machine's description, and the pair, tasks and
meta-algorithms they time and measure."""

from __future__ import annotations

import os
import re
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch

from metaaug import hardware
from metaaug.data.tasks import Task
from metaaug.meta.maml import MAML
from metaaug.meta.reptile import Reptile
from metaaug.meta.settings import Adversarial, OptimizerSpec
from metaaug.models.figr import FIGRDiscriminator, FIGRGenerator
from metaaug.models.gan import GAN, DCGANDiscriminator, DCGANGenerator

THREADS = 2
SEED = 0
SUPPORT = 4
DIGITS_SIZE = 16
FIGR_SIZE = 32
TARGET_SPEEDUP = 3.0
FALLBACK = re.compile(r"batching rule for (\S+?)\.? Please")


@dataclass(frozen=True)
class Plan:
    """What a run measures: the full benchmark or the --quick smoke run."""

    meta_batches: tuple[int, ...]
    min_seconds: float  # timed seconds per Table 1 cell (after one warm-up meta-step)
    min_steps: int
    reptile_steps: int
    maml_steps: int
    memory_steps: tuple[int, ...]
    memory_batch: int
    figr_steps: int
    figr_batches: tuple[int, ...]


FULL = Plan((1, 4, 8, 16), 2.0, 2, 10, 5, (1, 5, 10), 4, 10, (4, 8))
QUICK = Plan((1, 8), 0.0, 1, 10, 5, (1, 2), 4, 2, (2,))


@dataclass
class Warnings:
    """Ops that vmap ran without a batching rule, and any other warnings, by configuration."""

    fallbacks: dict[str, set[str]] = field(default_factory=dict)
    other: dict[str, set[str]] = field(default_factory=dict)

    def add(self, message: str, where: str) -> None:
        match = FALLBACK.search(message)
        if match:
            self.fallbacks.setdefault(match.group(1), set()).add(where)
        else:
            self.other.setdefault(message.splitlines()[0][:160], set()).add(where)

    @contextmanager
    def recording(self, where: str) -> Iterator[None]:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            yield
        for w in caught:
            self.add(str(w.message), where)

    def as_dict(self) -> dict[str, dict[str, list[str]]]:
        """The JSON form: op (or warning) -> the configurations it came up in."""
        return {
            "fallbacks": {op: sorted(where) for op, where in sorted(self.fallbacks.items())},
            "other": {msg: sorted(where) for msg, where in sorted(self.other.items())},
        }


def configure_torch(threads: int = THREADS) -> None:
    torch.set_num_threads(threads)
    hardware.reuse_host_memory()  # as `metaaug` runs (hardware.reuse_memory=true)
    # off by default: makes vmap warn for each op it runs through the per-sample fallback
    torch._C._functorch._set_vmap_fallback_warning_enabled(True)


def load() -> list[float] | None:
    """The load average (1 / 5 / 15 min): a timing taken beside other work reads slower."""
    if not hasattr(os, "getloadavg"):
        return None
    return [round(x, 2) for x in os.getloadavg()]


# ---------------------------------------------------------------------------------- building


def digits_gan() -> GAN:
    torch.manual_seed(SEED)
    return GAN(
        DCGANGenerator(64, 1, DIGITS_SIZE, width=32), DCGANDiscriminator(1, DIGITS_SIZE, width=32)
    )


def figr_gan() -> GAN:
    torch.manual_seed(SEED)
    return GAN(FIGRGenerator(100, 1, FIGR_SIZE), FIGRDiscriminator(1, FIGR_SIZE))


def random_tasks(batch: int, support: int, query: int, size: int) -> Task:
    """`batch` tasks of random images in [-1, 1], shaped [B, S, 1, size, size]."""
    gen = torch.Generator().manual_seed(SEED)
    s = torch.rand(batch, support, 1, size, size, generator=gen) * 2 - 1
    q = torch.rand(batch, query, 1, size, size, generator=gen) * 2 - 1
    return Task(s, q, tuple(f"class{i}" for i in range(batch)))


def reptile(inner_steps: int, vectorize: bool) -> Reptile:
    return Reptile(
        inner_steps, OptimizerSpec("sgd", 1e-3), meta_lr=1e-4, adversarial=Adversarial(),
        vectorize=vectorize,
    )  # fmt: skip


def maml(inner_steps: int, vectorize: bool, first_order: bool = False) -> MAML:
    return MAML(
        inner_steps, OptimizerSpec("sgd", 1e-3), meta_lr=1e-4, adversarial=Adversarial(),
        first_order=first_order, vectorize=vectorize,
    )  # fmt: skip
