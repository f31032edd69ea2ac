"""`metaaug fewshot`: does augmentation help few-shot classification?

Every learner is trained on every arm's version of the same episodes (meta-test classes only),
so each arm is compared with `none` episode by episode: a paired test, whose confidence
interval is far tighter than the two arms' own intervals suggest.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from metaaug.config import build, keys, validate
from metaaug.config import fewshot_registry as registry
from metaaug.config.fewshot_inputs import episode_sources, synthetic_folders
from metaaug.config.resume import WEIGHTS, check_weights, fewshot_defining, taken_episodes
from metaaug.errors import continue_with, exits_on_user_error
from metaaug.fewshot import journal
from metaaug.fewshot.arms import Arm
from metaaug.fewshot.fingerprint import digest
from metaaug.fewshot.report import markdown, per_episode, summarize, write
from metaaug.fewshot.scoring import Schedule, check_workers, score
from metaaug.fewshot.tasks import task_report
from metaaug.io.rundir import run_dir_lock
from metaaug.io.synthetic import ensure_outputs_free

OUTPUTS = ("fewshot.md", "fewshot.csv", "fewshot.json", "tensorboard", journal.FILE)
log = logging.getLogger("metaaug.fewshot")


def run(cfg: DictConfig) -> float:
    validate.check(cfg, "fewshot")  # every value's type and range, and the data folders
    run_dir = Path(HydraConfig.get().runtime.output_dir)
    ensure_outputs_free(run_dir, OUTPUTS)
    f = cfg.fewshot
    arm_names, learner_names, goal = registry.check_names(cfg)
    device = build.device(cfg)
    workers = check_workers(f.workers, device)
    schedule = Schedule(f.episodes, cfg.seed, workers, build.progress(cfg))
    taken = taken_episodes(cfg)  # what an interrupted run scored (`resume=`), verified
    classes, split = build.classes_and_split(cfg)
    synthetic, fixed = ({}, {}) if "synthetic" not in arm_names else synthetic_folders(cfg, split)
    context = registry.Context(cfg, classes, split, device, synthetic)
    # the episodes of meta-test classes, or the user's own tasks (`task=DIR`), by name
    sources = episode_sources(cfg, classes, split, fixed)
    # Arms before learners: a bad GAN checkpoint is refused in a second, not after the
    # protonet backbone or MAML's initialization has trained (each builder seeds its own
    # randomness, so the order leaves the figures as they were).
    # None stands for a combination `a+b`, made from its listed arms' images per episode
    arms: dict[str, Arm | None] = {
        name: None if "+" in name else registry.arm(name, context) for name in arm_names
    }
    learners = {name: registry.learner(name, context) for name in learner_names}
    # a digest per arm and learner that holds weights or images (`fewshot.fingerprint`)
    named = {**{f"arms.{n}": a for n, a in arms.items()},
             **{f"learners.{n}": ln for n, ln in learners.items()}}  # fmt: skip
    weights = {name: d for name, obj in named.items() if (d := digest(obj)) is not None}
    check_weights(cfg, weights)  # the episodes taken up were scored by these same weights

    t0 = time.perf_counter()
    defines = {**fewshot_defining(cfg), WEIGHTS: weights}
    with journal.opened(run_dir / journal.FILE, defines, taken) as episodes:
        if taken:
            log.info("took up %d scored episode(s) from %s", episodes.count(), cfg.resume)
        results = {name: score(source, arms, learners, schedule, episodes.part(name))
                   for name, source in sources.items()}  # fmt: skip
    elapsed = time.perf_counter() - t0
    title = f"{f.ways}-way {f.shots}-shot on {cfg.dataset.name}"
    if cfg.task is None:
        acc, kept = results["episodes"]
        rows = summarize(acc, f.confidence, kept)
        text = markdown(rows, title, f.queries, cfg.seed, f.confidence, kept)
        value = float(acc[goal[0]][goal[1]].mean())
        held = {"train": list(split.train), "val": list(split.val), "test": list(split.test),
                "episodes_from": str(f.classes)}  # fmt: skip
        report = {"rows": rows, "classes": held, **per_episode(acc, kept)}
    else:
        rows, text, report = task_report(results, f.confidence, cfg.seed, sources)
        value = next(r["accuracy"] for r in rows if (r["learner"], r["arm"]) == goal)

    objective = {"learner": goal[0], "arm": goal[1], "accuracy": value}
    hparams = OmegaConf.to_container(cfg, resolve=True)
    write(run_dir, rows, text, {"objective": objective, **report, "seconds": elapsed}, hparams)
    return value


@hydra.main(config_path="../conf", config_name="fewshot", version_base="1.3")
@exits_on_user_error(keys=keys.FEWSHOT)
def main(cfg: DictConfig) -> float:
    run_dir = Path(HydraConfig.get().runtime.output_dir)
    with run_dir_lock(run_dir), continue_with(lambda: resume_hint(run_dir)):
        return run(cfg)  # (the lock: one process per run directory)


def resume_hint(run_dir: Path) -> str | None:
    """How a stopped run goes on: from the episodes its journal kept, once there is one."""
    path = run_dir / journal.FILE
    if not path.is_file():
        return None
    count = sum(1 for line in path.read_text().splitlines()[1:] if line.endswith("}"))
    return (
        f"{count} scored episode(s) are kept in {path}; continue with resume={run_dir} and "
        "the same overrides"
    )
