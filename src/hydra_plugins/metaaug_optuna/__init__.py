"""metaaug's Optuna sweeper for Hydra (`hparams_search=optuna`): a current Optuna's ask/tell
API, trials launched by any Hydra launcher, failed trials recorded and the study goes on."""
