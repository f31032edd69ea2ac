"""An Optuna study as a Hydra sweeper: ask a batch of trials, launch them as jobs through the
configured launcher (joblib runs them in parallel), tell the study each job's return value.

A job that raises (a metaaug error re-raises inside this sweeper, see `metaaug.errors`) or
returns a non-finite value (a diverged GAN) is told as failed, with the reason in the trial's
user attributes, and the study goes on. The study lives in sqlite under the sweep directory:
rerunning the same command with the same `hydra.sweep.dir` resumes it, and Optuna's own tools
(optuna-dashboard, `optuna.load_study`) read it.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import (
    ChoiceSweep,
    IntervalSweep,
    Override,
    RangeSweep,
)
from hydra.core.plugins import Plugins
from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf

from hydra_plugins.metaaug_optuna import config as _config  # noqa: F401  (registers the node)
from metaaug.metrics.names import DIRECTIONS

if TYPE_CHECKING:  # optuna is imported when a sweep starts, not on every Hydra start
    import optuna

log = logging.getLogger(__name__)

THREADS_KEY = "hardware.threads"


def direction_of(objective: str, direction: str = "auto") -> str:
    """minimize or maximize: `direction`, or with auto the way `objective` improves."""
    if direction != "auto":
        if direction not in ("minimize", "maximize"):
            raise ValueError(f"direction={direction!r}: use auto, minimize or maximize")
        return direction
    if objective in DIRECTIONS:
        return DIRECTIONS[objective]
    raise ValueError(f"objective={objective!r} has no known direction; set hydra.sweeper.direction")


def distribution(override: Override) -> optuna.distributions.BaseDistribution:
    """The Optuna distribution of one sweep override: choice(a,b) -> categorical,
    range(lo,hi[,step]) -> integers lo..hi-step, interval(lo,hi) -> uniform floats (integers
    when both ends are), tag(log, interval(lo,hi)) -> log-uniform."""
    import optuna

    value = override.value()
    if isinstance(value, ChoiceSweep):
        return optuna.distributions.CategoricalDistribution(list(value.list))
    if isinstance(value, RangeSweep):
        start, stop, step = value.start, value.stop, value.step
        if all(isinstance(x, int) for x in (start, stop, step)) and step > 0 and stop > start:
            # Hydra's range excludes its stop, Optuna's includes its high end
            last = start + (stop - 1 - start) // step * step
            return optuna.distributions.IntDistribution(start, last, step=step)
        values = []
        x = start
        while (x < stop) if step > 0 else (x > stop):
            values.append(x)
            x += step
        return optuna.distributions.CategoricalDistribution(values)
    if isinstance(value, IntervalSweep):
        log_scale = "log" in value.tags
        if isinstance(value.start, int) and isinstance(value.end, int):
            return optuna.distributions.IntDistribution(value.start, value.end, log=log_scale)
        return optuna.distributions.FloatDistribution(
            float(value.start), float(value.end), log=log_scale
        )
    raise ValueError(
        f"{override.input_line}: the Optuna sweeper takes choice(...), range(...) or "
        "interval(...) (tag(log, interval(...)) for a log scale)"
    )


def search_space(
    params: dict[str, Any], arguments: Sequence[str]
) -> tuple[dict[str, optuna.distributions.BaseDistribution], list[str]]:
    """The search space (`params` from the config, then sweep overrides on the command line,
    which win) and the fixed overrides every trial gets."""
    parser = OverridesParser.create()
    space: dict[str, optuna.distributions.BaseDistribution] = {}
    for override in parser.parse_overrides([f"{k}={v}" for k, v in params.items()]):
        space[override.get_key_element()] = distribution(override)
    fixed = []
    for override in parser.parse_overrides(list(arguments)):
        if override.is_sweep_override():
            space[override.get_key_element()] = distribution(override)
        else:
            fixed.append(override.input_line)
    return space, fixed


def _one_line(err: BaseException) -> str:
    text = " ".join(str(err).split())
    return f"{type(err).__name__}: {text}"[:300]


def _cores() -> int:
    """The cores the trials may share: those this process may run on, as validate counts
    them (metaaug.hardware imports torch: not at plugin discovery)."""
    from metaaug.hardware import usable_cpus

    return usable_cpus()


class OptunaSweeper(Sweeper):
    def __init__(
        self,
        objective: str,
        direction: str,
        n_trials: int,
        n_jobs: int,
        seed: int,
        n_startup_trials: int,
        study_name: str,
        storage: str,
        params: dict[str, Any] | None,
    ) -> None:
        self.direction = direction_of(objective, direction)
        self.objective = objective
        self.n_trials = int(n_trials)
        self.n_jobs = n_jobs
        self.seed = int(seed)
        self.n_startup_trials = int(n_startup_trials)
        self.study_name = study_name
        self.storage = storage
        self.params = dict(params or {})

    def setup(
        self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig
    ) -> None:
        self.config = config
        self.launcher = Plugins.instance().instantiate_launcher(
            hydra_context=hydra_context, task_function=task_function, config=config
        )
        self.sweep_dir = Path(str(config.hydra.sweep.dir)).resolve()
        n_jobs = self.n_jobs or int(config.hydra.launcher.get("n_jobs", 1) or 1)
        # joblib's -1 means one job per core
        self.batch = _cores() if n_jobs < 0 else max(1, n_jobs)

    def _threads(self, fixed: list[str]) -> list[str]:
        """hardware.threads per trial so that parallel trials share the cores without
        oversubscription (unless the user set it)."""
        if self.batch == 1 or any(o.split("=", 1)[0].lstrip("+~") == THREADS_KEY for o in fixed):
            return []
        return [f"{THREADS_KEY}={max(1, _cores() // self.batch)}"]

    def study(self) -> optuna.Study:
        import optuna

        storage = self.storage or f"sqlite:///{self.sweep_dir / 'optuna.db'}"
        sampler = optuna.samplers.TPESampler(seed=self.seed, n_startup_trials=self.n_startup_trials)
        study = optuna.create_study(
            study_name=self.study_name, storage=storage, sampler=sampler,
            direction=self.direction, load_if_exists=True,
        )  # fmt: skip
        # trials left running by an interrupted sweep will never report: mark them failed
        for trial in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
            study.tell(trial.number, state=optuna.trial.TrialState.FAIL)
        return study

    def sweep(self, arguments: list[str]) -> None:
        self.sweep_dir.mkdir(parents=True, exist_ok=True)
        OmegaConf.save(self.config, self.sweep_dir / "multirun.yaml")
        space, fixed = search_space(self.params, arguments)
        fixed += self._threads(fixed)
        study = self.study()
        # job numbers (sweep subdirs) continue after every folder already there: a resumed
        # study's, and another study's sharing the sweep dir and its optuna.db
        used = [int(p.name) for p in self.sweep_dir.iterdir() if p.name.isdigit()]
        job = max(len(study.trials), max(used, default=-1) + 1)
        todo = self.n_trials - len(study.trials)
        log.info(
            "Optuna study %r (%s %s, %d trials, %d to run, %d at a time) in %s",
            self.study_name, self.direction, self.objective, self.n_trials, max(todo, 0),
            self.batch, self.sweep_dir,
        )  # fmt: skip
        while todo > 0:
            n = min(self.batch, todo)
            trials = [study.ask(space) for _ in range(n)]
            batch = []
            for i, trial in enumerate(trials):
                trial.set_user_attr("job", job + i)
                params = [f"{k}={v}" for k, v in trial.params.items()]  # str(float) is repr(float)
                batch.append(tuple(fixed + params))
            returns = self.launcher.launch(batch, initial_job_idx=job)
            for trial, ret in zip(trials, returns, strict=True):
                self._tell(study, trial, ret)
            job += n
            todo -= n
        self._report(study)

    def _tell(self, study: optuna.Study, trial: optuna.Trial, ret: Any) -> None:
        import optuna

        try:
            value = float(ret.return_value)
        except Exception as err:  # the job failed: record why, go on with the study
            trial.set_user_attr("error", _one_line(err))
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
            log.warning("trial %d failed: %s", trial.number, _one_line(err))
            return
        if not math.isfinite(value):
            trial.set_user_attr("error", f"diverged: {self.objective} = {value}")
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
            log.warning("trial %d diverged (%s = %s)", trial.number, self.objective, value)
            return
        study.tell(trial, value)
        log.info("trial %d: %s = %.4g %s", trial.number, self.objective, value, trial.params)

    def _report(self, study: optuna.Study) -> None:
        import optuna

        done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
        failed = sum(t.state == optuna.trial.TrialState.FAIL for t in study.trials)
        if not done:
            log.warning("no trial of the study completed (%d failed)", failed)
            return
        best = study.best_trial
        results = {"objective": self.objective, "direction": self.direction,
                   "best_value": best.value, "best_params": best.params,
                   "best_job": best.user_attrs.get("job"), "completed": len(done),
                   "failed": failed}  # fmt: skip
        OmegaConf.save(OmegaConf.create(results), self.sweep_dir / "optimization_results.yaml")
        log.info(
            "best of %d completed trials (%d failed): #%d %s = %.4g %s", len(done), failed,
            best.number, self.objective, best.value, best.params,
        )  # fmt: skip
