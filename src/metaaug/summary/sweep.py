"""One row per trial of a multirun (`metaaug train -m`, with or without the Optuna sweeper):
its swept parameters, every metric of the main arm, the baselines' fidelity, wall time and
status (`collect`); `write` writes them out."""

from __future__ import annotations

import contextlib
import json
import math
import sqlite3
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from metaaug.errors import UserError
from metaaug.metrics.names import DIRECTIONS, REPORTED


@dataclass
class Trial:
    job: int
    status: str  # completed | failed | running
    value: float = math.nan  # the objective
    params: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    wall_s: float = math.nan
    error: str = ""


@dataclass
class Sweep:
    root: Path
    objective: str
    direction: str
    trials: list[Trial]
    importance: dict[str, float]  # parameter -> share of the objective's variance (Optuna)
    measured_on: str = "meta-val classes"  # where the trials' figures were measured

    def best(self) -> Trial | None:
        done = [t for t in self.trials if t.status == "completed" and math.isfinite(t.value)]
        if not done:
            return None
        pick = max if self.direction == "maximize" else min
        return pick(done, key=lambda t: t.value)


def _overrides(job_dir: Path) -> list[str]:
    path = job_dir / ".hydra" / "overrides.yaml"
    return list(yaml.safe_load(path.read_text()) or []) if path.is_file() else []


def _swept(overrides: dict[int, list[str]]) -> dict[int, dict[str, str]]:
    """The overrides that differ between jobs (a basic sweep's swept keys)."""
    split = {j: dict(o.split("=", 1) for o in ovr if "=" in o) for j, ovr in overrides.items()}
    keys = {k for kv in split.values() for k in kv}
    varying = sorted(k for k in keys if len({kv.get(k) for kv in split.values()}) > 1)
    return {j: {k: kv[k] for k in varying if k in kv} for j, kv in split.items()}


def _study(root: Path, name: str | None) -> tuple[Any, list[Any]]:
    """The sweep's Optuna study and its trials, read once (a damaged table fails here, in one
    line, not halfway through the rows); (None, []) without a study."""
    db = root / "optuna.db"
    if not db.is_file():
        return None, []
    import optuna
    from sqlalchemy.exc import SQLAlchemyError

    fix = "move it aside to summarize the job folders alone, or restore it from a copy"
    if "studies" not in _tables(db):  # else Optuna would create its tables in the file
        raise UserError(f"'{db}' is not a readable Optuna study (it holds no study); {fix}")
    storage = f"sqlite:///{db.resolve()}"
    try:
        names = optuna.study.get_all_study_names(storage)
        if not names:
            return None, []
        study = optuna.load_study(study_name=name if name in names else names[0], storage=storage)
        return study, study.trials
    except SQLAlchemyError as error:
        reason = str(error.orig) if getattr(error, "orig", None) else type(error).__name__
        raise UserError(f"'{db}' is not a readable Optuna study ({reason}); {fix}") from None


def _tables(db: Path) -> set[str]:
    """The tables of the SQLite file `db`, read without writing to it (none when it is not one)."""
    query = "SELECT name FROM sqlite_master WHERE type='table'"
    try:
        with contextlib.closing(sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True)) as c:
            return {row[0] for row in c.execute(query)}
    except sqlite3.Error:
        return set()


def _importance(study: Any) -> dict[str, float]:
    if study is None:
        return {}
    import optuna

    try:
        with warnings.catch_warnings():  # "importances will be equal" on a tiny study
            warnings.simplefilter("ignore")
            return dict(optuna.importance.get_param_importances(study))
    except (RuntimeError, ValueError):  # too few completed trials, or one value per parameter
        return {}


def collect(root: Path) -> Sweep:
    """Read a multirun directory: its job folders, and the Optuna study if it has one."""
    if not root.is_dir():
        raise UserError(
            f"'{root}' is not a folder; pass a multirun directory (outputs/multirun/...)"
        )
    jobs = {int(p.name): p for p in root.iterdir() if p.is_dir() and p.name.isdigit()}
    config_path = root / "multirun.yaml"
    try:
        config = yaml.safe_load(config_path.read_text()) if config_path.is_file() else {}
    except (yaml.YAMLError, UnicodeDecodeError):
        config = None
    if not isinstance(config, dict):
        raise UserError(
            f"'{config_path}' is damaged (not the YAML mapping Hydra writes); restore it, or move "
            "it aside to summarize the job folders without the sweep's settings"
        )
    if not jobs and not (root / "optuna.db").is_file():
        raise UserError(
            f"'{root}' holds no job folders (0/, 1/, ...) of a `metaaug train -m` sweep; pass "
            "the sweep's directory"
        )
    sweeper = (config.get("hydra") or {}).get("sweeper") or {}
    study, study_trials = _study(root, sweeper.get("study_name"))
    objective = str(config.get("objective") or sweeper.get("objective") or "fid")
    direction = str(sweeper.get("direction") or "auto")
    if direction == "auto":
        direction = DIRECTIONS.get(objective, "minimize")

    trials: dict[int, Trial] = {}
    places: set[str] = set()
    for t in study_trials:
        job = int(t.user_attrs.get("job", t.number))
        wall = (t.datetime_complete - t.datetime_start).total_seconds() if (
            t.datetime_complete and t.datetime_start) else math.nan  # fmt: skip
        trials[job] = Trial(
            job, {"COMPLETE": "completed", "FAIL": "failed", "PRUNED": "pruned"}.get(
                t.state.name, t.state.name.lower()),
            float(t.value) if t.value is not None else math.nan, dict(t.params),
            wall_s=wall, error=str(t.user_attrs.get("error", "")),
        )  # fmt: skip
    swept = _swept({j: _overrides(d) for j, d in jobs.items()})
    for job, folder in sorted(jobs.items()):
        trial = trials.setdefault(job, Trial(job, "failed", params=swept.get(job, {})))
        metrics_path = folder / "metrics.json"
        if not metrics_path.is_file():
            trial.error = trial.error or "no metrics.json (the job failed or is running)"
            continue
        try:
            report = json.loads(metrics_path.read_text())
            metrics, value = _figures(report), number(report["objective"]["value"])
            wall = float(report.get("timing", {}).get("total_s", trial.wall_s))
        except (json.JSONDecodeError, UnicodeDecodeError):
            trial.status, trial.error = "failed", "metrics.json is damaged (not JSON)"
            continue
        except (KeyError, TypeError, AttributeError, ValueError):
            trial.status, trial.error = "failed", "metrics.json is damaged (not a train report)"
            continue
        trial.metrics, trial.value, trial.wall_s = metrics, value, wall
        places.add("meta-val classes" if _validated(report) else "meta-test targets")
        if study is None:
            trial.status = "completed"
    measured_on = " and ".join(sorted(places)) or "meta-val classes"
    return Sweep(root, objective, direction, [trials[j] for j in sorted(trials)],
                 _importance(study), measured_on)  # fmt: skip


def _validated(report: dict[str, Any]) -> bool:
    """Whether the trial's objective was measured on meta-val classes."""
    return str(report["objective"].get("over", "")).startswith("validation")


def _figures(report: dict[str, Any]) -> dict[str, float]:
    """The figures a trial is shown with: its main arm's last validation (meta-val classes)
    when the objective was measured there, so that a search's table shows nothing of the
    meta-test classes; otherwise every arm on the targets, copy_shots among them."""
    if _validated(report):
        history = report["validation"]["history"]
        last = history[max(history, key=int)]
        return {k: number(last.get(k)) for k in REPORTED if k in last}
    main = report["objective"]["arm"]
    results = report["results"]
    figures = {k: number(results[main][k]) for k in REPORTED if k in results[main]}
    for arm in results:
        if arm != main:
            for key in ("fidelity", "novel_fidelity"):
                if key in results[arm]:
                    figures[f"{arm}_{key}"] = number(results[arm][key])
    return figures


def number(value: Any) -> float:
    """A metric of metrics.json as a float: null (not measurable) is nan."""
    return math.nan if value is None else float(value)
