"""The sweeper's config node (`hydra/sweeper=metaaug_optuna`), registered with Hydra.

No `from __future__ import annotations` here: Hydra's plugin scan executes this module
outside `sys.modules`, where a dataclass cannot resolve string annotations.
"""

from dataclasses import dataclass, field
from typing import Any

from hydra.core.config_store import ConfigStore


@dataclass
class OptunaSweeperConf:
    _target_: str = "hydra_plugins.metaaug_optuna.sweeper.OptunaSweeper"
    objective: str = "fid"  # the name `metaaug train` returns; sets the direction when auto
    direction: str = "auto"  # auto | minimize | maximize
    n_trials: int = 20  # trials of the study in all (a resumed study runs the rest)
    n_jobs: int = 0  # trials per batch; 0 = the launcher's n_jobs (1 without one)
    seed: int = 0  # the TPE sampler's seed
    n_startup_trials: int = 10  # random trials before TPE models the space
    study_name: str = "metaaug"
    storage: str = ""  # "" = sqlite:///<sweep dir>/optuna.db
    params: Any = field(default_factory=dict)  # key: choice(...) | interval(...) ...


ConfigStore.instance().store(
    group="hydra/sweeper", name="metaaug_optuna", node=OptunaSweeperConf, provider="metaaug"
)
