"""The metrics `metaaug train` can return as its objective, and which way each improves
(shared by the command, the Optuna sweeper and `metaaug summarize`)."""

from __future__ import annotations

DIRECTIONS = {
    "fid": "minimize",
    "kid": "minimize",
    "is": "maximize",
    "memorization": "maximize",
    "fidelity": "maximize",
}
OBJECTIVES = tuple(DIRECTIONS)
