"""The metric names, in one place: which way each objective improves (the command, the Optuna
sweeper and `metaaug summarize`), what `metaaug train` reports per arm (log lines, curves,
metrics.json, TensorBoard, sweep summaries) and the columns of `metaaug evaluate`."""

from __future__ import annotations

DIRECTIONS = {
    "fid": "minimize",
    "kid": "minimize",
    "is": "maximize",
    "memorization": "maximize",
    "fidelity": "maximize",
    "copies": "minimize",
    # of the class and not a copy: what a search should maximize (copying the shots scores 0)
    "novel_fidelity": "maximize",
}
OBJECTIVES = tuple(DIRECTIONS)
# per arm in `train`'s reports, fidelity first: the quantity the tool exists for
REPORTED = ("fidelity", "novel_fidelity", "copies", "ceiling", "memorization", "fid", "kid", "is")
# ... and, for an image-conditioned GAN's arms only (metaaug.metrics.shot_spread)
IF_MEASURED = ("shot_spread",)
# `evaluate`'s table and evaluation.json, in this order
EVALUATED = ("fid", "kid", "is", "precision", "recall", "memorization", "copies", "fidelity",
             "novel_fidelity", "ceiling")  # fmt: skip
