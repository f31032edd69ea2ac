"""Shared fixtures: running the real `metaaug` command, the shared Omniglot subset, a cache."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_OMNIGLOT = REPO.parent / "shared" / "data" / "omniglot"

# The metric classifiers' smallest budget, for tests of what a command reads and writes
METRIC = ["metric.epochs=1", "metric.min_steps=0", "metric.fidelity.steps_per_class=0",
          "metric.kid_subset_size=10", "metric.kid_subsets=5"]  # fmt: skip

# The smallest budget that still runs every stage: for end-to-end tests of the plumbing.
TINY = [
    "meta_algo.iterations=4",
    "validation.every=2",
    "validation.classes=1",
    "validation.steps=2",
    "validation.num_images=16",
    "finetune.steps=3",
    "generate.num_images=24",
    *METRIC,
    "checkpoint.every=2",
    "baselines.pretrain.iterations=2",
]


@pytest.fixture(scope="session")
def metric_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One domain-classifier cache for the session: tests share a trained classifier."""
    return tmp_path_factory.mktemp("metaaug-cache")


Runner = Callable[..., subprocess.CompletedProcess]


@pytest.fixture
def metaaug(metric_cache: Path, tmp_path: Path) -> Runner:
    """Run `metaaug <args>` in a subprocess, as a user would (from a scratch working dir)."""

    def run(
        *args: str,
        cwd: Path | None = None,
        timeout: int = 600,
        prefix: Sequence[str] = (),  # a command that runs it (tests/test_unwritable.py)
        cache: Path | None = None,  # another METAAUG_CACHE than the session's
    ) -> subprocess.CompletedProcess:
        env = {**os.environ, "METAAUG_CACHE": str(cache or metric_cache), "PYTHONUNBUFFERED": "1"}
        return subprocess.run(
            [*prefix, sys.executable, "-m", "metaaug.cli", *args],
            cwd=cwd or tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    return run


@pytest.fixture
def omniglot_root() -> Path:
    if not (SHARED_OMNIGLOT / "images_background_small1.zip").exists():
        pytest.skip(f"shared Omniglot subset not found at {SHARED_OMNIGLOT}")
    return SHARED_OMNIGLOT


@pytest.fixture
def refused(metric_cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Runner:
    """`metaaug <args>` run in this process, for a command line that is refused before any
    work: the exit code, stdout and stderr a subprocess would give (`metaaug.cli.main` prints
    the one line and calls sys.exit), without starting an interpreter and torch for it (about
    2.5 s a case). A case that goes on to work is still run, as far as it goes; the torch
    threads it may set are restored."""
    import contextlib
    import io
    import itertools
    import logging

    import torch

    from metaaug import cli

    calls = itertools.count()
    monkeypatch.setenv("METAAUG_CACHE", str(metric_cache))

    def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
        where = cwd or tmp_path / f"in-process-{next(calls)}"  # a default run dir of its own
        where.mkdir(parents=True, exist_ok=True)
        out, err = io.StringIO(), io.StringIO()
        threads, argv, before = torch.get_num_threads(), sys.argv, os.getcwd()
        root = logging.getLogger()
        handlers, level = root.handlers[:], root.level  # Hydra configures logging for its job
        code: int | str | None = 0
        try:
            os.chdir(where)
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                cli.main(list(args))
        except SystemExit as stop:
            code = stop.code
        finally:
            os.chdir(before)
            sys.argv = argv
            torch.set_num_threads(threads)
            for handler in root.handlers[:]:
                if handler not in handlers:
                    root.removeHandler(handler)
                    handler.close()
            root.handlers[:] = handlers
            root.setLevel(level)
        code = code if isinstance(code, int) else (0 if code is None else 1)
        return subprocess.CompletedProcess(["metaaug", *args], code, out.getvalue(),
                                           err.getvalue())  # fmt: skip

    return run


def assert_one_line_error(proc: subprocess.CompletedProcess, *fragments: str) -> None:
    """Bad input: exit code 2, no traceback, exactly one `metaaug: error:` line holding every
    fragment."""
    assert proc.returncode == 2, (proc.returncode, proc.stderr[-2000:])
    assert "Traceback" not in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("metaaug: error:")]
    assert len(errors) == 1, proc.stderr
    for fragment in fragments:
        assert fragment in errors[0], errors[0]


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory: pytest.TempPathFactory, metric_cache: Path) -> Path:
    """One tiny digits run for the tests that read a run's outputs (treat it as read-only):
    checkpoints/meta_init.pt, checkpoints/finetuned/<class>.pt and its synthetic/ images."""
    out = tmp_path_factory.mktemp("tiny_run") / "run"
    env = {**os.environ, "METAAUG_CACHE": str(metric_cache)}
    proc = subprocess.run(
        [sys.executable, "-m", "metaaug.cli", "train", *TINY, "compare_baselines=false",
         f"hydra.run.dir={out}"],
        env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out
