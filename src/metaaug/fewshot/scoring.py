"""Running the episodes: every learner x arm on each episode, the same episodes and learner
randomness for every arm, in one process or shared among forked workers (each episode is a
function of the seeds alone, so the numbers do not depend on how they are shared)."""

from __future__ import annotations

import itertools
import logging
import multiprocessing
from collections.abc import Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor
from tqdm import tqdm

from metaaug.errors import BadValue
from metaaug.fewshot.arms import Arm, combined
from metaaug.fewshot.episodes import EpisodeSampler
from metaaug.fewshot.journal import Part, Result
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


def _rng(seed: int, episode: int, slot: int) -> torch.Generator:
    """The generator of arm number `slot` on `episode`; slot 100 is the learners' (the same
    for every arm: a learner's own randomness does not differ between arms)."""
    return torch.Generator().manual_seed((seed * 1_000_003 + episode) * 101 + slot)


def episode_accuracies(
    sampler: EpisodeSampler,
    arms: dict[str, Arm | None],
    learners: dict[str, Learner],
    seed: int,
    i: int,
) -> Result:
    """Query accuracy of every learner x arm on episode `i`, a function of the seeds alone;
    and the share of its generated images each filtering arm kept (`fewshot.trust`)."""
    episode = sampler.episode(i)
    acc: dict[str, dict[str, float]] = {ln: {} for ln in learners}
    made: dict[str, tuple[Tensor, Tensor]] = {}
    kept: dict[str, float] = {}

    def make(name: str) -> tuple[Tensor, Tensor]:
        """Arm `name`'s images of this episode, made once (another arm may be made of them)."""
        if name in made:
            return made[name]
        arm = arms[name]
        if arm is None:  # `a+b`: its arms' images of this episode (listed before it or after)
            parts = [make(p) for p in name.split("+")]
            made[name] = combined(parts, len(episode.support))
        elif (base := getattr(arm, "of", None)) is not None:
            # a view of another arm's images (`fewshot.trust.View`)
            made[name] = arm.view(episode, make(base))  # type: ignore[union-attr]
        else:
            made[name] = arm(episode, _rng(seed, i, list(arms).index(name)))  # type: ignore[misc]
        if getattr(arm, "kept", None) is not None:
            kept[name] = arm.kept  # type: ignore[union-attr]
        return made[name]

    for arm_name in arms:
        images, targets = make(arm_name)
        for learner_name, learner in learners.items():
            acc[learner_name][arm_name] = learner.accuracy(
                images, targets, episode.query, episode.query_labels, _rng(seed, i, 100)
            )
    return acc, kept


# What forked workers inherit instead of unpickling it: the episode sampler, arms, learners
# and seed of the evaluation in progress.
_WORK: tuple | None = None


def _worker_episode(i: int) -> Result:
    assert _WORK is not None, "a fewshot worker started outside score()"
    return episode_accuracies(*_WORK, i)


@dataclass(frozen=True)
class Schedule:
    """Which episodes to score and how: episodes 0..episodes-1 of `seed`, shared among
    `workers` forked processes (one thread each), with a progress bar or not."""

    episodes: int
    seed: int
    workers: int = 1
    progress: bool = False


def score(
    sampler: EpisodeSampler,
    arms: dict[str, Arm | None],
    learners: dict[str, Learner],
    schedule: Schedule,
    journal: Part | None = None,
) -> tuple[dict[str, dict[str, np.ndarray]], dict[str, np.ndarray]]:
    """Per-episode query accuracy [episodes] of every learner x arm, on identical episodes,
    and per filtering arm the share of its generated images kept in each episode.

    With `workers` > 1 the episodes are shared among that many forked processes of one thread
    each; every episode depends on its seeds alone, so the numbers are those of a one-thread
    run in a single process. For the same reason the episodes a `journal` holds already (from
    an interrupted run) are taken as they are, and each newly scored one is recorded there.
    """
    global _WORK
    n, seed = schedule.episodes, schedule.seed
    part = journal or Part()
    acc = {ln: {an: np.zeros(n) for an in arms} for ln in learners}
    kept: dict[str, np.ndarray] = {}
    todo = [i for i in range(n) if i not in part.done]
    if schedule.workers > 1:
        _WORK = (sampler, arms, learners, seed)
        context = multiprocessing.get_context("fork")
        # one thread per process: `workers` processes share the machine's cores
        pool = ProcessPoolExecutor(schedule.workers, mp_context=context,
                                   initializer=torch.set_num_threads, initargs=(1,))  # fmt: skip
        results = pool.map(_worker_episode, todo)
    else:
        pool = None
        results = (episode_accuracies(sampler, arms, learners, seed, i) for i in todo)
    bar = tqdm(desc="episodes", total=n, initial=n - len(todo),
               disable=not schedule.progress, leave=False)  # fmt: skip

    def recorded(pairs: Iterable[tuple[int, Result]]) -> Iterator[tuple[int, Result]]:
        for i, result in pairs:  # in episode order, whichever process scored them
            part.record(i, result)
            bar.update()
            yield i, result

    taken = ((i, part.done[i]) for i in range(n) if i in part.done)
    try:
        for i, (one, shares) in itertools.chain(taken, recorded(zip(todo, results, strict=True))):
            for learner_name, per_arm in one.items():
                for arm_name, value in per_arm.items():
                    acc[learner_name][arm_name][i] = value
            for arm_name, share in shares.items():
                kept.setdefault(arm_name, np.full(n, np.nan))[i] = share
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)
            _WORK = None
        bar.close()
    return acc, kept
