"""A train run's context, built once from the config (stages 1-2 of `metaaug train`): the
run's folders, device, data and split, the random initialization with its precision, the
evaluator, the writer, and the plain facts its report records. Every later stage takes it."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf
from torch.utils.tensorboard import SummaryWriter

from metaaug import distributed
from metaaug.config import build, evaluator
from metaaug.config.training import check_pairs, check_tasks
from metaaug.data.target import Data
from metaaug.errors import UserError
from metaaug.models.gan import GAN
from metaaug.pipeline.outputs import RunPaths
from metaaug.pipeline.settings import Objective, RunContext, Sampling
from metaaug.precision import Precision

log = logging.getLogger("metaaug.train")


def prepare(cfg: DictConfig, run_dir: Path) -> RunContext:
    """The context of a train run in `run_dir` (refused if it holds outputs already)."""
    paths = RunPaths.prepare(run_dir, cfg.generate.out)
    device = build.device(cfg)
    data = _data(cfg)
    init = build.gan(cfg, device)
    check_tasks(cfg, data, init)  # before the classifiers train and tensorboard/ is written
    check_pairs(cfg, init, min((t.shots.shape[0] for t in data.targets),
                               default=cfg.target.shots))  # fmt: skip
    prec = _precision(cfg, device, init)
    evaluate, metric_info = evaluator.evaluator(cfg, data, device)
    term = evaluator.class_loss(cfg, data.classes, data.split, device)
    writer = SummaryWriter(str(paths.run / "tensorboard"))
    writer.add_text("config", "```\n" + OmegaConf.to_yaml(cfg, resolve=True) + "\n```")
    g = cfg.generate
    return RunContext(
        paths=paths, device=device, data=data, init=init, precision=prec, evaluate=evaluate,
        fidelity=metric_info["fidelity"], finetune=build.finetune(cfg, prec, term),
        sampling=Sampling(g.num_images, g.batch_size, cfg.seed),
        objective=Objective(str(cfg.objective), str(cfg.objective_on)), writer=writer,
        record=_record(cfg, data, device, prec, metric_info),
        config=OmegaConf.to_container(cfg, resolve=True),  # type: ignore[arg-type]
    )  # fmt: skip


def _data(cfg: DictConfig) -> Data:
    """Stage 1: the data and split (the targets are held out before the split is drawn)."""
    data = build.data(cfg)
    if data.split.by == "group":
        log.info(
            "split by group: %s",
            "; ".join(f"{part} {', '.join(names)}" for part, names in data.split.groups().items()),
        )
    log.info(
        "dataset %s: %d meta-train / %d meta-val / %d meta-test classes; %d target(s): %s, "
        "%d shots each",
        cfg.dataset.name, len(data.split.train), len(data.split.val), len(data.split.test),
        len(data.targets), ", ".join(t.class_name for t in data.targets[:5])
        + (", ..." if len(data.targets) > 5 else "") or "none (meta-val only)",
        cfg.target.shots,
    )  # fmt: skip
    if cfg.objective_on == "validation" and not data.split.val:
        raise UserError(
            "objective_on=validation but the split has no meta-val class; raise "
            "dataset.val_fraction or use objective_on=targets"
        )
    return data


def _precision(cfg: DictConfig, device: torch.device, init: GAN) -> Precision:
    prec = build.precision(cfg, device, init)
    log.info(
        "device %s, precision %s%s (hardware.precision=%s, %.2fM weights)%s", device, prec.name,
        " channels-last" if prec.channels_last else "", cfg.hardware.precision,
        sum(p.numel() for p in init.parameters()) / 1e6,
        ", torch.compile on" if cfg.hardware.compile else "",
    )  # fmt: skip
    return prec


def _record(
    cfg: DictConfig, data: Data, device: torch.device, prec: Precision, metric: dict[str, Any]
) -> dict[str, Any]:
    """What metrics.json and the synthetic manifest say about the run besides its results."""
    split = data.split
    return {
        "seed": cfg.seed,
        "config_hash": build.config_hash(cfg),
        "dataset": cfg.dataset.name,
        "image_size": cfg.dataset.image_size,
        "channels": cfg.dataset.channels,
        "hardware": {"device": str(device), "precision": prec.name,
                     "precision_asked": str(cfg.hardware.precision),
                     "channels_last": prec.channels_last, "compile": cfg.hardware.compile,
                     "threads": torch.get_num_threads(),
                     "ranks": distributed.world().size},
        "target": {"shots": cfg.target.shots, "path": cfg.target.path},
        # which classes (and, split by group, which groups) went where
        "split": {"by": split.by, "train": list(split.train), "val": list(split.val),
                  "test": list(split.test),
                  **({"groups": split.groups()} if split.by == "group" else {})},
        "metric": {"name": cfg.metric.name, "classifier_accuracy": metric["accuracy"],
                   "classifier_path": str(metric["path"])},
        "finetune_steps": cfg.finetune.steps,
        "meta_iterations": cfg.meta_algo.iterations,
        "validation": {"classes": list(split.val[: cfg.validation.classes]),
                       "steps": cfg.validation.steps},
    }  # fmt: skip
