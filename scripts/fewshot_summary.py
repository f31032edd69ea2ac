"""The figures of a few-shot benchmark over seeds, from each seed's fewshot.json: what
`bench_fewshot.py` writes as JSON and `render_results.py` turns into docs/results.md's tables.

A seed sets the split, the GAN, the backbone and the episodes, so the accuracy of an arm is one
observation per seed (its mean over that seed's episodes): the 95% interval is over seeds, and
the episode interval of each seed is kept beside it. An arm against `none` is paired per
episode within a seed (every arm sees the same episodes), and the interval of that paired
difference is again over seeds: episodes of one seed share one GAN and one backbone, so a
p-value that treats them as independent overstates the evidence.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from machine import cpu_name
from recipe_summary import interval

from metaaug.fewshot.stats import mean_ci


def summarize(
    runs: Mapping[int, Mapping[int, dict]], threads: int, settings: Sequence[str]
) -> dict[str, Any]:
    """`runs[shots][seed]` = that run's fewshot.json: per shots, learner and arm, the accuracy
    over seeds, each seed's episode interval, and the paired difference against none."""
    out: dict[str, Any] = {"bench": "fewshot", "threads": threads, "cpu": cpu_name(),
                           "settings": list(settings), "shots": {}}  # fmt: skip
    for shots, by_seed in sorted(runs.items()):
        seeds = sorted(by_seed)
        out["seeds"] = seeds
        first = by_seed[seeds[0]]["per_episode"]
        table: dict[str, Any] = {}
        for learner, arms in first.items():
            table[learner] = {}
            for arm in arms:
                per_seed = [np.asarray(by_seed[s]["per_episode"][learner][arm]) for s in seeds]
                none = [np.asarray(by_seed[s]["per_episode"][learner]["none"]) for s in seeds]
                cell = interval([float(x.mean()) for x in per_seed])
                cell["episodes"] = [int(x.size) for x in per_seed]
                cell["episode_ci_half_width"] = [mean_ci(x).half_width for x in per_seed]
                cell["vs_none"] = interval([float((x - n).mean()) for x, n in
                                            zip(per_seed, none, strict=True)])  # fmt: skip
                table[learner][arm] = cell
        out["shots"][str(shots)] = table
    return out
