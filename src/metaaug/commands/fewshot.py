"""`metaaug fewshot`: does augmentation help few-shot classification?

Every learner is trained on every arm's version of the same episodes (meta-test classes only),
so each arm is compared with `none` episode by episode: a paired test, whose confidence
interval is far tighter than the two arms' own intervals suggest.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf
from torch.utils.tensorboard import SummaryWriter

from metaaug.config import build, keys, validate
from metaaug.config import fewshot_registry as registry
from metaaug.config.fewshot_inputs import synthetic_folders
from metaaug.errors import UserError, exits_on_user_error
from metaaug.fewshot.arms import Arm
from metaaug.fewshot.episodes import EpisodeSampler
from metaaug.fewshot.report import markdown, summarize, to_csv
from metaaug.fewshot.scoring import check_workers, score
from metaaug.io.rundir import run_dir_lock
from metaaug.io.synthetic import ensure_outputs_free
from metaaug.io.tensorboard import log_hparams

OUTPUTS = ("fewshot.md", "fewshot.csv", "fewshot.json", "tensorboard")
log = logging.getLogger("metaaug.fewshot")


def _names(cfg: DictConfig, key: str, known: DictConfig) -> list[str]:
    names = [str(n) for n in cfg.fewshot[key]]
    unknown = [n for n in names if n not in known and not (key == "arms" and "+" in n)]
    if unknown or not names:
        raise UserError(
            f"fewshot.{key}={names}: {', '.join(unknown) or 'empty'}; choose from "
            f"{', '.join(known)}"
        )
    if key == "arms":
        _check_combinations(names, known)
    return names


def _check_combinations(names: list[str], known: DictConfig) -> None:
    """An arm `a+b` adds what `a` and `b` add, made by them as listed arms of the run."""
    for name in (n for n in names if "+" in n):
        parts = name.split("+")
        missing = [p for p in parts if p not in names]
        if missing or len(set(parts)) < len(parts) or not all(p in known for p in parts):
            raise UserError(
                f"fewshot.arms has {name}: a combination of distinct arms, each also listed "
                f"on its own (missing: {', '.join(missing) or 'none'}); e.g. "
                "fewshot.arms=[none,classic,gan,classic+gan]"
            )


def run(cfg: DictConfig) -> float:
    validate.check(cfg, "fewshot")  # every value's type and range, and the data folders
    run_dir = Path(HydraConfig.get().runtime.output_dir)
    ensure_outputs_free(run_dir, OUTPUTS)
    f = cfg.fewshot
    arm_names = _names(cfg, "arms", cfg.arms)
    learner_names = _names(cfg, "learners", cfg.learners)
    # by default the first learner with the last arm (the candidate, after `none`)
    goal = (str(f.objective.learner or learner_names[0]), str(f.objective.arm or arm_names[-1]))
    if goal[0] not in learner_names or goal[1] not in arm_names:
        raise UserError(
            f"fewshot.objective={goal[0]}/{goal[1]} is not among the learners {learner_names} "
            f"and arms {arm_names}; set fewshot.objective.learner and .arm to ones that run"
        )
    if int(f.episodes) < 2:
        raise UserError(f"fewshot.episodes={f.episodes}: a confidence interval needs at least 2")
    device = build.device(cfg)
    workers = check_workers(int(f.workers), device)
    classes, split = build.classes_and_split(cfg)
    synthetic, fixed = ({}, {}) if "synthetic" not in arm_names else synthetic_folders(cfg, split)
    context = registry.Context(cfg, classes, split, device, synthetic)
    sampler = EpisodeSampler(
        classes, split.test, int(f.ways), int(f.shots), int(f.queries), int(cfg.seed),
        fixed_support=fixed,
    )  # fmt: skip
    log.info("%d-way %d-shot episodes from %d meta-test classes (backbone: %d meta-train)",
             f.ways, f.shots, len(split.test), len(split.train))  # fmt: skip
    learners = {name: registry.learner(name, context) for name in learner_names}
    # None stands for a combination `a+b`, made from its listed arms' images per episode
    arms: dict[str, Arm | None] = {
        name: None if "+" in name else registry.arm(name, context) for name in arm_names
    }

    t0 = time.perf_counter()
    progress = sys.stderr.isatty() if cfg.progress == "auto" else bool(cfg.progress)
    acc = score(sampler, arms, learners, int(f.episodes), int(cfg.seed), progress, workers)
    rows = summarize(acc, float(f.confidence))
    elapsed = time.perf_counter() - t0

    writer = SummaryWriter(str(run_dir / "tensorboard"))
    for r in rows:
        writer.add_scalar(f"fewshot/{r['learner']}/{r['arm']}/accuracy", r["accuracy"], 0)
        if r["diff"] is not None:
            writer.add_scalar(f"fewshot/{r['learner']}/{r['arm']}/diff_vs_none", r["diff"], 0)
    value = float(acc[goal[0]][goal[1]].mean())
    log_hparams(writer, OmegaConf.to_container(cfg, resolve=True), {"accuracy": value})
    writer.close()
    f = cfg.fewshot
    title = f"{f.ways}-way {f.shots}-shot on {cfg.dataset.name}"
    text = markdown(rows, title, int(f.queries), int(cfg.seed), float(f.confidence))
    (run_dir / "fewshot.md").write_text(text)
    (run_dir / "fewshot.csv").write_text(to_csv(rows))
    report = {
        "objective": {"learner": goal[0], "arm": goal[1], "accuracy": value},
        "rows": rows,
        "classes": {"train": list(split.train), "test": list(split.test)},
        "per_episode": {ln: {an: v.tolist() for an, v in pa.items()} for ln, pa in acc.items()},
        "seconds": elapsed,
    }
    (run_dir / "fewshot.json").write_text(json.dumps(report, indent=2) + "\n")
    for r in rows:
        log.info("%s / %s: %.2f%% ± %.2f", r["learner"], r["arm"], 100 * r["accuracy"],
                 100 * r["ci"])  # fmt: skip
    log.info("wrote %s (%.0f s)", run_dir / "fewshot.md", elapsed)
    return value


@hydra.main(config_path="../conf", config_name="fewshot", version_base="1.3")
@exits_on_user_error(keys=keys.FEWSHOT)
def main(cfg: DictConfig) -> float:
    with run_dir_lock(HydraConfig.get().runtime.output_dir):  # one process per run directory
        return run(cfg)
