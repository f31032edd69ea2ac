"""Running the episodes: every learner x arm on each episode, the same episodes and learner
randomness for every arm, in one process or shared among forked workers (each episode is a
function of the seeds alone, so the numbers do not depend on how they are shared)."""

from __future__ import annotations

import logging
import multiprocessing
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import torch
from torch import Tensor
from tqdm import tqdm

from metaaug.errors import BadValue
from metaaug.fewshot.arms import Arm, combined
from metaaug.fewshot.episodes import EpisodeSampler
from metaaug.fewshot.learners import Learner

log = logging.getLogger("metaaug.fewshot")


def check_workers(workers: int, device: torch.device) -> int:
    if workers < 1:
        raise BadValue(f"{{workers}}={workers}: use 1 (one process) or more")
    if workers > 1 and device.type != "cpu":
        raise BadValue(
            f"{{workers}}={workers} forks CPU processes, but {{device}} is {device}; "
            "set {workers}=1 on a GPU (or use the CPU)"
        )
    if workers > 1 and "fork" not in multiprocessing.get_all_start_methods():
        raise BadValue(
            f"{{workers}}={workers} needs processes started by fork, which this platform "
            "lacks; set {workers}=1"
        )
    return workers


def _arm_rng(seed: int, episode: int, arm: int) -> torch.Generator:
    return torch.Generator().manual_seed((seed * 1_000_003 + episode) * 101 + arm)


def _learner_rng(seed: int, episode: int) -> torch.Generator:
    # the same for every arm: a learner's own randomness does not differ between arms
    return torch.Generator().manual_seed((seed * 1_000_003 + episode) * 101 + 100)


def episode_accuracies(
    sampler: EpisodeSampler,
    arms: dict[str, Arm | None],
    learners: dict[str, Learner],
    seed: int,
    i: int,
) -> tuple[dict[str, dict[str, float]], dict[str, float]]:
    """Query accuracy of every learner x arm on episode `i`, a function of the seeds alone;
    and the share of its generated images each filtering arm kept (`fewshot.trust`)."""
    episode = sampler.episode(i)
    acc: dict[str, dict[str, float]] = {ln: {} for ln in learners}
    made: dict[str, tuple[Tensor, Tensor]] = {}
    kept: dict[str, float] = {}

    def make(name: str, index: int) -> None:
        arm = arms[name]
        base = getattr(arm, "of", None)
        if base is not None:  # a view of another arm's images (`fewshot.trust.View`)
            if base not in made:
                make(base, list(arms).index(base))
            made[name] = arm.view(episode, made[base])  # type: ignore[union-attr]
        else:
            made[name] = arm(episode, _arm_rng(seed, i, index))  # type: ignore[misc]
        if getattr(arm, "kept", None) is not None:
            kept[name] = arm.kept  # type: ignore[union-attr]

    for a, (arm_name, arm) in enumerate(arms.items()):
        if arm is None:  # `a+b`: its arms' images of this episode (listed before it or after)
            parts = arm_name.split("+")
            for p in parts:
                if p not in made:
                    make(p, list(arms).index(p))
            made[arm_name] = combined([made[p] for p in parts], len(episode.support))
        elif arm_name not in made:
            make(arm_name, a)
        images, targets = made[arm_name]
        for learner_name, learner in learners.items():
            acc[learner_name][arm_name] = learner.accuracy(
                images, targets, episode.query, episode.query_labels, _learner_rng(seed, i)
            )
    return acc, kept


# What forked workers inherit instead of unpickling it: the episode sampler, arms, learners
# and seed of the evaluation in progress.
_WORK: tuple | None = None


def _worker_start() -> None:
    # one thread per process: `workers` processes share the machine's cores
    torch.set_num_threads(1)


def _worker_episode(i: int) -> tuple[dict[str, dict[str, float]], dict[str, float]]:
    assert _WORK is not None, "a fewshot worker started outside score()"
    return episode_accuracies(*_WORK, i)


def score(
    sampler: EpisodeSampler,
    arms: dict[str, Arm | None],
    learners: dict[str, Learner],
    episodes: int,
    seed: int,
    progress: bool = False,
    workers: int = 1,
) -> tuple[dict[str, dict[str, np.ndarray]], dict[str, np.ndarray]]:
    """Per-episode query accuracy [episodes] of every learner x arm, on identical episodes,
    and per filtering arm the share of its generated images kept in each episode.

    With `workers` > 1 the episodes are shared among that many forked processes of one thread
    each; every episode depends on its seeds alone, so the numbers are those of a one-thread
    run in a single process.
    """
    global _WORK
    acc = {ln: {an: np.zeros(episodes) for an in arms} for ln in learners}
    kept: dict[str, np.ndarray] = {}
    if workers > 1:
        _WORK = (sampler, arms, learners, seed)
        context = multiprocessing.get_context("fork")
        pool = ProcessPoolExecutor(workers, mp_context=context, initializer=_worker_start)
        results = pool.map(_worker_episode, range(episodes))
    else:
        pool = None
        results = (episode_accuracies(sampler, arms, learners, seed, i) for i in range(episodes))
    try:
        for i, (one, shares) in enumerate(tqdm(results, desc="episodes", total=episodes,
                                               disable=not progress, leave=False)):  # fmt: skip
            for learner_name, per_arm in one.items():
                for arm_name, value in per_arm.items():
                    acc[learner_name][arm_name][i] = value
            for arm_name, share in shares.items():
                kept.setdefault(arm_name, np.full(episodes, np.nan))[i] = share
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)
            _WORK = None
    return acc, kept
