"""Optuna sweeps through the real command line, and `metaaug summarize` on them."""

from __future__ import annotations

import csv
import json
import math
import os
from pathlib import Path

import optuna
import pytest
from hydra.core.override_parser.overrides_parser import OverridesParser

from hydra_plugins.metaaug_optuna import sweeper
from hydra_plugins.metaaug_optuna.sweeper import direction_of, distribution, search_space
from metaaug.hardware import usable_cpus
from tests.conftest import TINY, Runner, assert_one_line_error


def _dist(line: str) -> optuna.distributions.BaseDistribution:
    return distribution(OverridesParser.create().parse_override(line))


def test_sweep_syntax_becomes_optuna_distributions() -> None:
    assert _dist("a=choice(wgan_gp,hinge)") == optuna.distributions.CategoricalDistribution(
        ["wgan_gp", "hinge"]
    )
    # Hydra's range excludes its stop; Optuna's integer range includes its high end
    assert _dist("a=range(2,17,2)") == optuna.distributions.IntDistribution(2, 16, step=2)
    assert _dist("a=interval(0.1,0.5)") == optuna.distributions.FloatDistribution(0.1, 0.5)
    assert _dist("a=tag(log,interval(1e-5,1e-3))") == optuna.distributions.FloatDistribution(
        1e-5, 1e-3, log=True
    )
    space, fixed = search_space({"b": "choice(1,2)"}, ["seed=3", "b=choice(4,5)", "c=range(1,3)"])
    assert fixed == ["seed=3"]
    assert space["b"].choices == (4, 5)  # the command line wins over the config's space
    assert space["c"] == optuna.distributions.IntDistribution(1, 2)


@pytest.mark.parametrize(
    ("objective", "direction"),
    [("fid", "minimize"), ("kid", "minimize"), ("fidelity", "maximize"), ("is", "maximize")],
)
def test_the_direction_follows_the_objective(objective: str, direction: str) -> None:
    assert direction_of(objective) == direction
    assert direction_of(objective, "maximize") == "maximize"


def _sweep(metaaug: Runner, sweep: Path, trials: int):
    # a space where one choice is an impossible config: those trials fail, the study goes on
    return metaaug(
        "train", "-m", "hparams_search=optuna", "hydra/launcher=joblib",
        "hydra.launcher.n_jobs=2", f"hydra.sweeper.n_trials={trials}",
        "hydra.sweeper.n_startup_trials=2", "hydra.sweeper.params=null",
        "meta_algo.meta_lr=tag(log, interval(1e-5, 1e-3))", "gan.loss=choice(wgan_gp, nosuch)",
        *TINY, "compare_baselines=false", f"hydra.sweep.dir={sweep}",
    )  # fmt: skip


def _last_validation(report: dict) -> dict:
    history = report["validation"]["history"]
    return history[max(history, key=int)]


@pytest.mark.slow  # several train runs: make test-full
def test_an_optuna_sweep_records_failed_trials_resumes_and_summarizes(
    metaaug: Runner, tmp_path: Path
) -> None:
    sweep = tmp_path / "sweep"
    proc = _sweep(metaaug, sweep, 4)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "warning" not in proc.stderr  # the preset chooses on meta-val classes
    storage = f"sqlite:///{sweep / 'optuna.db'}"
    study = optuna.load_study(study_name="metaaug", storage=storage)
    # objective=novel_fidelity, objective_on=validation
    assert study.direction == optuna.study.StudyDirection.MAXIMIZE
    assert len(study.trials) == 4
    states = set()
    for trial in study.trials:
        job_dir = sweep / str(trial.user_attrs["job"])
        if trial.params["gan.loss"] == "nosuch":
            assert trial.state == optuna.trial.TrialState.FAIL
            assert "gan.loss='nosuch' is not known" in trial.user_attrs["error"]
        else:
            assert trial.state == optuna.trial.TrialState.COMPLETE
            report = json.loads((job_dir / "metrics.json").read_text())
            assert trial.value == _last_validation(report)["novel_fidelity"]
            assert report["objective"]["over"].startswith("validation")
            config = (job_dir / ".hydra" / "config.yaml").read_text()
            # two trials at a time share the cores
            assert f"threads: {max(1, usable_cpus() // 2)}" in config
            assert list((job_dir / "tensorboard").glob("hparams/events.*"))
        states.add(trial.state)
    assert optuna.trial.TrialState.COMPLETE in states

    # the same command with more trials resumes the study: one more trial, in job folder 4
    proc = _sweep(metaaug, sweep, 5)
    assert proc.returncode == 0, proc.stderr[-3000:]
    study = optuna.load_study(study_name="metaaug", storage=storage)
    assert len(study.trials) == 5 and study.trials[-1].user_attrs["job"] == 4

    proc = metaaug("summarize", str(sweep))
    assert proc.returncode == 0, proc.stderr[-3000:]
    with (sweep / "summary.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert [int(r["job"]) for r in rows] == [0, 1, 2, 3, 4]
    for row, trial in zip(rows, study.trials, strict=True):
        assert row["gan.loss"] == trial.params["gan.loss"]
        if trial.state == optuna.trial.TrialState.COMPLETE:
            assert row["status"] == "completed"
            # the figures are the meta-val ones the trial was judged on
            assert math.isclose(float(row["novel_fidelity"]), trial.value, abs_tol=5e-4)
            report = json.loads((sweep / row["job"] / "metrics.json").read_text())
            shown = _last_validation(report)
            assert math.isclose(float(row["fidelity"]), shown["fidelity"], abs_tol=5e-4)
            assert row["ceiling"] != "" and float(row["wall_s"]) > 0
        else:
            assert row["status"] == "failed" and "nosuch" in row["error"]
    summary = (sweep / "summary.md").read_text()
    assert "objective `novel_fidelity` (maximized)" in summary
    assert "measured on meta-val classes" in summary and "Warning" not in summary
    assert (sweep / "summary.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # a second summarize does not replace the files unless asked to
    proc = metaaug("summarize", str(sweep))
    assert proc.returncode == 2 and "--force" in proc.stderr


def test_summarize_a_basic_multirun_and_refuse_a_wrong_folder(
    metaaug: Runner, refused: Runner, tmp_path: Path
) -> None:
    sweep = tmp_path / "sweep"
    proc = metaaug("train", "-m", "seed=0,1", *TINY, "baselines.pretrain.iterations=1",
                   "validation.every=0", f"hydra.sweep.dir={sweep}")  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    # the default objective is measured on the targets: the sweep says so, once
    warnings = [line for line in proc.stderr.splitlines() if "metaaug: warning" in line]
    assert len(warnings) == 1 and "objective_on=validation" in warnings[0]
    proc = metaaug("summarize", str(sweep))
    assert proc.returncode == 0, proc.stderr[-3000:]
    with (sweep / "summary.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert [(r["job"], r["seed"], r["status"]) for r in rows] == [
        ("0", "0", "completed"), ("1", "1", "completed")
    ]  # fmt: skip
    # measured on the targets: every arm beside the main one, copy_shots included
    assert {"copy_shots_novel_fidelity", "scratch_fidelity", "pretrain_fidelity"} <= set(rows[0])
    assert all(float(r["copy_shots_novel_fidelity"]) == 0.0 for r in rows)
    assert (
        "Warning: these trials were judged on the meta-test targets"
        in (sweep / "summary.md").read_text()
    )
    proc = refused("summarize", str(tmp_path / "nowhere"))
    assert proc.returncode == 2 and "is not a folder" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_summarize_a_damaged_study_or_trial_is_one_line(refused: Runner, tmp_path: Path) -> None:
    """A disk that filled up mid-write leaves a damaged optuna.db or metrics.json: summarize
    names the file and what to do, exit 2, instead of SQLAlchemy's or json's traceback."""
    sweep = tmp_path / "sweep"
    (sweep / "0").mkdir(parents=True)
    (sweep / "0" / "metrics.json").write_text('{"objective": {"val')  # cut short
    (sweep / "optuna.db").write_bytes(b"SQLite format 3\x00" + bytes(2000))
    proc = refused("summarize", str(sweep))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    (line,) = proc.stderr.strip().splitlines()
    assert f"'{sweep / 'optuna.db'}' is not a readable Optuna study" in line
    assert "move it aside to summarize the job folders alone" in line
    (sweep / "optuna.db").unlink()  # what the message says: the job folders alone
    proc = refused("summarize", str(sweep))  # in this process too: it reads two small files
    assert proc.returncode == 0, proc.stderr[-3000:]
    with (sweep / "summary.csv").open() as f:
        (row,) = list(csv.DictReader(f))
    assert (row["status"], row["error"]) == ("failed", "metrics.json is damaged (not JSON)")


def test_summarize_reads_a_sweep_without_writing_to_it_or_a_traceback(
    refused: Runner, tmp_path: Path
) -> None:
    """An empty or foreign optuna.db is refused before Optuna could create its tables in it
    (summarize only reads); a damaged multirun.yaml is one line; a metrics.json that is JSON
    but no train report is a failed row."""
    import sqlite3

    sweep = tmp_path / "sweep"
    (sweep / "0").mkdir(parents=True)
    (sweep / "0" / "metrics.json").write_text("[1, 2, 3]")
    db = sweep / "optuna.db"
    db.write_bytes(b"")  # a sweep stopped before Optuna wrote its tables
    foreign = tmp_path / "foreign.db"
    with sqlite3.connect(foreign) as con:
        con.execute("CREATE TABLE x (a INTEGER)")
    for content in (b"", foreign.read_bytes()):
        db.write_bytes(content)
        proc = refused("summarize", str(sweep))
        assert_one_line_error(proc, f"'{db}' is not a readable Optuna study (it holds no study)")
        assert db.read_bytes() == content  # not written to
    db.unlink()
    for damaged in ("", ": : :[", "[1, 2]"):
        (sweep / "multirun.yaml").write_text(damaged)
        proc = refused("summarize", str(sweep))
        assert_one_line_error(proc, "multirun.yaml' is damaged", "move it aside")
    (sweep / "multirun.yaml").unlink()
    proc = refused("summarize", str(sweep))
    assert proc.returncode == 0, proc.stderr[-3000:]
    with (sweep / "summary.csv").open() as f:
        (row,) = list(csv.DictReader(f))
    assert row["status"] == "failed"
    assert row["error"] == "metrics.json is damaged (not a train report)"


def test_trials_share_the_cores_this_process_may_use(monkeypatch: pytest.MonkeyPatch) -> None:
    """A SLURM allocation or taskset of 2 cores on a 64-core machine: the trials' threads
    are counted from the 2 (from 64, every trial would ask for more threads than
    `hardware.threads` accepts)."""
    monkeypatch.setattr(os, "cpu_count", lambda: 64)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1})
    assert sweeper._cores() == 2


def test_a_sweep_over_seeds_is_summarized_per_setting_with_an_interval() -> None:
    from scipy import stats

    from metaaug.summary import Sweep, Trial
    from metaaug.summary.seeds import by_setting, markdown

    def trial(job: int, lr: str, seed: int, value: float, status: str = "completed") -> Trial:
        return Trial(job, status, value, {"lr": lr, "seed": seed})

    trials = [trial(0, "1e-3", 0, 0.8), trial(1, "1e-3", 1, 0.9), trial(2, "1e-3", 2, 1.0),
              trial(3, "2e-3", 0, 0.95), trial(4, "2e-3", 1, 0.5),
              trial(5, "2e-3", 2, math.nan, "failed"),  # left out
              trial(6, "5e-4", 0, 0.99)]  # one seed: no row  # fmt: skip
    sweep = Sweep(Path("."), "novel_fidelity", "maximize", trials, {})
    rows = by_setting(sweep)
    assert [(r[0], r[1]) for r in rows] == [({"lr": "1e-3"}, [0.8, 0.9, 1.0]),
                                            ({"lr": "2e-3"}, [0.95, 0.5])]  # fmt: skip
    assert rows[0][2] == pytest.approx(0.9)
    assert rows[0][3] == pytest.approx(stats.t.ppf(0.975, 2) * 0.1 / 3**0.5)
    text = "\n".join(markdown(sweep))
    assert "| 1e-3 | 3 | 0.8, 0.9, 1 | 0.9 [" in text and "5e-4" not in text
