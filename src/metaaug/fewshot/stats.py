"""Confidence intervals and paired tests over episodes.

Student-t intervals, as the few-shot literature reports them (mean +- 1.96 standard errors is
the large-sample limit; with t the interval stays honest for a few dozen episodes). The
paired test is the t-test on per-episode differences: every arm sees the same episodes, so
the episode-to-episode variance, much larger than the effect of an augmentation, cancels.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats


@dataclass(frozen=True)
class Interval:
    mean: float
    half_width: float  # the interval is mean +- half_width
    n: int

    @property
    def low(self) -> float:
        return self.mean - self.half_width

    @property
    def high(self) -> float:
        return self.mean + self.half_width


def mean_ci(values: np.ndarray | list[float], confidence: float = 0.95) -> Interval:
    """Mean and the half-width of its Student-t confidence interval (0 for one value)."""
    x = np.asarray(values, dtype=np.float64)
    n = x.size
    if n < 2:
        return Interval(float(x.mean()) if n else math.nan, 0.0 if n else math.nan, n)
    sem = x.std(ddof=1) / math.sqrt(n)
    t = stats.t.ppf(0.5 + confidence / 2, df=n - 1)
    return Interval(float(x.mean()), float(t * sem), n)


@dataclass(frozen=True)
class Paired:
    """An arm against the reference on the same episodes: the difference and its test."""

    diff: Interval
    p_value: float  # two-sided, H0: mean difference 0


def paired_comparison(
    arm: np.ndarray | list[float], reference: np.ndarray | list[float], confidence: float = 0.95
) -> Paired:
    """Paired t-test of `arm - reference` (per episode)."""
    d = np.asarray(arm, dtype=np.float64) - np.asarray(reference, dtype=np.float64)
    diff = mean_ci(d, confidence)
    n = d.size
    if n < 2:
        p = math.nan
    elif (sd := d.std(ddof=1)) == 0:
        p = 1.0 if d.mean() == 0 else 0.0  # identical or uniformly shifted episodes
    else:
        t = d.mean() / (sd / math.sqrt(n))
        p = float(2 * stats.t.sf(abs(t), df=n - 1))
    return Paired(diff, p)
