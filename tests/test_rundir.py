"""Two runs never share a directory: default run directories are unique per process, a
directory is locked by the process writing into it, a used sweep directory is refused."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from metaaug.errors import UserError
from metaaug.io import rundir
from tests.conftest import TINY, Runner, assert_one_line_error


def _holder(directory: Path) -> subprocess.Popen:
    """Another process that takes the lock on `directory` and keeps it until killed."""
    script = textwrap.dedent(f"""
        import sys, time
        from metaaug.io import rundir
        rundir.acquire({str(directory)!r})
        print("locked", flush=True)
        time.sleep(600)
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "locked"
    return proc


def _kill(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    proc.stdout.close()


def test_a_locked_directory_is_refused_until_its_holder_dies(tmp_path: Path) -> None:
    run = tmp_path / "run"
    holder = _holder(run)
    try:
        with pytest.raises(UserError) as err:
            rundir.acquire(run)
        message = str(err.value)
        assert f"'{run.resolve()}' is in use by another metaaug process" in message
        assert f"(pid {holder.pid})" in message and "hydra.run.dir" in message
        with pytest.raises(UserError, match="in use"):
            rundir.claim_run_dir(run)
    finally:
        _kill(holder)  # kill -9: no cleanup ran, the kernel dropped the lock
    assert [p.name for p in run.iterdir()] == [rundir.LOCK_FILE]
    rundir.claim_run_dir(run)  # the lock file a dead run left behind does not count as output
    try:
        # held by this process now: another one is refused
        script = f"from metaaug.io import rundir; rundir.acquire({str(run)!r})"
        proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
        assert proc.returncode != 0 and f"(pid {os.getpid()})" in proc.stderr
    finally:
        rundir.release(run)


def test_the_lock_of_a_with_block_is_released_at_its_end(tmp_path: Path) -> None:
    script = f"from metaaug.io import rundir; rundir.acquire({str(tmp_path)!r})"

    def other_process_locks() -> bool:
        return subprocess.run([sys.executable, "-c", script], capture_output=True).returncode == 0

    with rundir.run_dir_lock(tmp_path):
        assert not other_process_locks()
    assert other_process_locks()


def test_the_run_id_is_one_per_process() -> None:
    cfg = OmegaConf.create({"a": "${metaaug.run_id:}", "b": "x-${metaaug.run_id:}"})
    assert cfg.a == rundir.RUN_ID and cfg.b == f"x-{rundir.RUN_ID}"
    script = "from metaaug.io import rundir; print(rundir.RUN_ID)"
    other = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert other.stdout.strip() not in ("", rundir.RUN_ID)


def test_two_runs_started_together_get_their_own_run_directories(
    metric_cache: Path, tmp_path: Path
) -> None:
    # as the `metaaug` fixture runs the command, but both at once, with default run dirs
    env = {**os.environ, "METAAUG_CACHE": str(metric_cache), "PYTHONUNBUFFERED": "1"}
    command = [sys.executable, "-m", "metaaug.cli", "train", *TINY]
    options = {"cwd": tmp_path, "env": env, "stdout": subprocess.DEVNULL, "text": True}
    procs = [
        subprocess.Popen([*command, f"seed={seed}"], stderr=subprocess.PIPE, **options)
        for seed in (1, 2)
    ]
    for proc in procs:
        _, stderr = proc.communicate(timeout=600)
        assert proc.returncode == 0, stderr[-3000:]
    runs = sorted((tmp_path / "outputs" / "train").glob("*/*"))
    assert len(runs) == 2, runs
    seeds = set()
    for run in runs:
        # Hydra's .hydra/, its log and the command's outputs all landed in one directory
        config = OmegaConf.load(run / ".hydra" / "config.yaml")
        metrics = json.loads((run / "metrics.json").read_text())
        assert metrics["seed"] == config.seed and metrics["results"]
        assert (run / "checkpoints" / "meta_init.pt").is_file()
        assert (run / "train.log").read_text().count("synthetic images of") == 1
        seeds.add(metrics["seed"])
    assert seeds == {1, 2}


def test_a_refused_run_leaves_no_directory_behind(refused: Runner, tmp_path: Path) -> None:
    """A bad value refused by the command (after Hydra wrote .hydra/ and its log): the run
    directory it created is gone, so the corrected command can use the same hydra.run.dir;
    default directories likewise."""
    run = tmp_path / "run"
    proc = refused("train", *TINY, "finetune.steps=-3", f"hydra.run.dir={run}")
    assert_one_line_error(proc, "finetune.steps=-3")
    assert not run.exists()
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    proc = refused("train", *TINY, "finetune.steps=-3", cwd=cwd)
    assert_one_line_error(proc, "finetune.steps=-3")
    assert not [p for p in cwd.rglob("*") if p.is_file()]


def test_a_run_directory_another_process_holds_is_refused(refused: Runner, tmp_path: Path) -> None:
    run = tmp_path / "run"
    holder = _holder(run)
    try:
        proc = refused("train", *TINY, f"hydra.run.dir={run}")
    finally:
        _kill(holder)
    assert_one_line_error(proc, str(run.resolve()), "in use by another metaaug process")
    assert [p.name for p in run.iterdir()] == [rundir.LOCK_FILE]  # refused before Hydra wrote


def test_a_sweep_job_directory_another_process_holds_is_refused(
    refused: Runner, tmp_path: Path
) -> None:
    # the lock taken inside the command (Hydra chose the job directory)
    sweep = tmp_path / "sweep"
    holder = _holder(sweep / "0")
    try:
        proc = refused("train", "-m", *TINY, f"hydra.sweep.dir={sweep}")
    finally:
        _kill(holder)
    assert_one_line_error(proc, str((sweep / "0").resolve()), "in use", "hydra.run.dir")
    assert not (sweep / "0" / "metrics.json").exists()


def _used_sweep(sweep: Path) -> Path:
    """A sweep directory as a finished sweep leaves it; returns job 0's config."""
    (sweep / "0" / ".hydra").mkdir(parents=True)
    (sweep / "1" / ".hydra").mkdir(parents=True)
    (sweep / "0" / "metrics.json").write_text("{}")
    config = sweep / "0" / ".hydra" / "config.yaml"
    config.write_text("seed: 7\n")
    return config


def test_a_multirun_into_a_used_sweep_directory_is_refused_before_writing(
    refused: Runner, tmp_path: Path
) -> None:
    sweep = tmp_path / "sweep"
    config = _used_sweep(sweep)
    before = config.read_bytes()
    listing = sorted(p.relative_to(sweep) for p in sweep.rglob("*"))
    proc = refused("train", "-m", "seed=0,1", *TINY, f"hydra.sweep.dir={sweep}")
    assert_one_line_error(proc, f"sweep directory '{sweep}'", "0/, 1/", "hydra.sweep.dir")
    assert config.read_bytes() == before
    assert sorted(p.relative_to(sweep) for p in sweep.rglob("*")) == listing


def test_a_multirun_into_a_used_sweep_directory_given_by_an_interpolation_is_refused(
    refused: Runner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sweep = tmp_path / "sweep"
    config = _used_sweep(sweep)
    before = config.read_bytes()
    listing = sorted(p.relative_to(sweep) for p in sweep.rglob("*"))
    monkeypatch.setenv("METAAUG_TEST_SWEEP", str(sweep))  # cli.py cannot read it: the callback
    proc = refused("train", "-m", "seed=0,1", *TINY, "hydra.sweep.dir=${oc.env:METAAUG_TEST_SWEEP}")
    assert_one_line_error(proc, f"sweep directory '{sweep}'", "0/, 1/", "hydra.sweep.dir")
    assert config.read_bytes() == before
    assert sorted(p.relative_to(sweep) for p in sweep.rglob("*")) == listing


def test_a_sweep_directory_with_an_optuna_study_is_resumable(tmp_path: Path) -> None:
    used, study = tmp_path / "used", tmp_path / "study"
    _used_sweep(used)
    _used_sweep(study)
    (study / rundir.STUDY_FILE).write_bytes(b"")
    assert rundir.sweep_jobs(used) == ["0", "1"]
    assert rundir.sweep_jobs(study) == []  # the sweeper resumes it in new job folders
    with pytest.raises(UserError, match="already holds the jobs of another sweep"):
        rundir.claim_sweep_dir(used)
    for sweep, kwargs in ((study, {}), (used, {"storage": "sqlite:////studies/optuna.db"})):
        rundir.claim_sweep_dir(sweep, **kwargs)
        rundir.release(sweep)


def test_a_run_directory_given_by_an_interpolation_is_refused_before_hydra_writes(
    metaaug: Runner, refused: Runner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = tmp_path / "run"
    monkeypatch.setenv("METAAUG_TEST_DIR", str(run))
    where = "hydra.run.dir=${oc.env:METAAUG_TEST_DIR}"  # cli.py cannot read it: Hydra's callback
    assert metaaug("train", *TINY, "compare_baselines=false", where).returncode == 0
    before = {p: p.read_bytes() for p in run.rglob("*") if p.is_file()}
    proc = refused("train", *TINY, "seed=3", where)
    assert_one_line_error(proc, str(run), "not empty")
    assert {p: p.read_bytes() for p in run.rglob("*") if p.is_file()} == before
