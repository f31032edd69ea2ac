"""hardware.compile: the compiled inner round gives the eager numbers; where torch.compile
fails, one line says so and the run goes on eagerly."""

from __future__ import annotations

import logging

import pytest
import torch

from metaaug.data.tasks import Task
from metaaug.meta import compiled
from metaaug.meta.maml import MAML
from metaaug.meta.reptile import Reptile
from metaaug.meta.settings import Adversarial, OptimizerSpec
from metaaug.models.gan import GAN, DCGANDiscriminator, DCGANGenerator


def _run(algo_cls, compile: bool, vectorize: bool, tasks: int = 1, **kw) -> torch.Tensor:
    torch.manual_seed(0)
    gan = GAN(DCGANGenerator(8, 1, 16, 4), DCGANDiscriminator(1, 16, 4))
    images = torch.rand(2, tasks, 8, 1, 16, 16) * 2 - 1
    algo = algo_cls(2, OptimizerSpec("sgd", 1e-2), 0.01, Adversarial(), meta_optimizer="sgd",
                    vectorize=vectorize, compile=compile, **kw)  # fmt: skip
    rng = torch.Generator().manual_seed(0)
    for batch in images:
        algo.meta_step(gan, Task(batch[:, :4], batch[:, 4:], tuple("ab"[:tasks])), rng)
    return torch.cat([p.detach().flatten() for p in gan.parameters()])


@pytest.mark.slow  # 23 s of compiling: make test-full (the default suite neared 15 minutes)
def test_compiled_reptile_gives_the_eager_initialization(caplog) -> None:
    with caplog.at_level(logging.WARNING):
        got = _run(Reptile, compile=True, vectorize=False)
    assert "could not be compiled" not in caplog.text  # it really ran compiled
    torch.testing.assert_close(got, _run(Reptile, compile=False, vectorize=False),
                               rtol=0, atol=1e-5)  # fmt: skip


@pytest.mark.slow
def test_compiled_vectorized_reptile_gives_the_eager_initialization(caplog) -> None:
    with caplog.at_level(logging.WARNING):
        got = _run(Reptile, compile=True, vectorize=True, tasks=2)
    assert "could not be compiled" not in caplog.text
    torch.testing.assert_close(got, _run(Reptile, compile=False, vectorize=True, tasks=2),
                               rtol=0, atol=1e-5)  # fmt: skip


def test_a_failed_compile_is_one_line_and_runs_eagerly(monkeypatch, caplog) -> None:
    def broken(fn, **kwargs):
        def run(*args):
            raise RuntimeError("inductor: no C++ compiler found\nlong traceback text")

        return run

    monkeypatch.setattr(compiled.torch, "compile", broken)
    with caplog.at_level(logging.WARNING):
        got = _run(Reptile, compile=True, vectorize=False)
    lines = [r.getMessage() for r in caplog.records if "hardware.compile" in r.getMessage()]
    assert lines == [
        "hardware.compile: reptile's inner round could not be compiled (RuntimeError: "
        "inductor: no C++ compiler found); running it eagerly"
    ]
    torch.testing.assert_close(got, _run(Reptile, compile=False, vectorize=False),
                               rtol=0, atol=0)  # fmt: skip


def test_maml_says_it_runs_eagerly(caplog) -> None:
    with caplog.at_level(logging.WARNING):
        got = _run(MAML, compile=True, vectorize=False)
    assert "maml differentiates through its inner loop" in caplog.text
    assert caplog.text.count("hardware.compile") == 1  # once, not per meta-step
    torch.testing.assert_close(got, _run(MAML, compile=False, vectorize=False), rtol=0, atol=0)
