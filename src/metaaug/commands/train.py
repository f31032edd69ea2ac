"""`metaaug train`: meta-train a GAN initialization, adapt it (and the baselines) to each
few-shot target, write synthetic images, measure them against held-out real images.

`run` composes the stages of `metaaug.pipeline`; each target goes through adapt -> generate
-> evaluate in turn, and the report aggregates them (mean ± sd over targets).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

import hydra
import torch
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf
from torch import Tensor
from torch.utils.tensorboard import SummaryWriter

from metaaug import distributed, hardware, validate
from metaaug.commands import build, keys
from metaaug.data.target import Target
from metaaug.errors import UserError, continue_with, exits_on_user_error
from metaaug.io.images import folder_name, write_synthetic
from metaaug.io.rundir import run_dir_lock
from metaaug.metrics.names import OBJECTIVES
from metaaug.models.gan import GAN
from metaaug.pipeline import outputs, report
from metaaug.pipeline.adapt import Curve, adapt_arms
from metaaug.pipeline.evaluate import Results, across, heldout_unavailable, measure_arms
from metaaug.pipeline.generate import generate, noise_seed
from metaaug.pipeline.initialize import (
    Initializations,
    check_pairs,
    initializations,
    validates,
)
from metaaug.precision import Precision
from metaaug.training.meta_loop import Evaluate

log = logging.getLogger("metaaug.train")


@dataclass
class Outcome:
    """One target's results: every arm's metrics and curves, and its main-arm images."""

    target: Target
    results: Results
    curves: dict[str, Curve]
    images: Tensor  # the main arm's synthetic images
    shown: dict[str, Tensor]  # the first samples of every arm (samples/overview.png)
    unavailable: str | None  # why fidelity cannot be measured, if it cannot


def check(cfg: DictConfig) -> None:
    """Config errors that need no data (one line each, before any work)."""
    validate.check(cfg, "train")  # every value's type and range, and the data folders
    if cfg.objective not in OBJECTIVES:
        raise UserError(f"objective={cfg.objective!r} is not known; use one of {OBJECTIVES}")
    if cfg.objective_on not in ("targets", "validation"):
        raise UserError(
            f"objective_on={cfg.objective_on!r} is not known; use targets or validation"
        )
    if cfg.objective_on == "validation" and not validates(cfg):
        raise UserError(
            "objective_on=validation needs the main arm to meta-train with validation; set "
            "validation.every > 0, validation.classes > 0 and meta_algo.iterations > 0, or "
            "objective_on=targets"
        )
    if str(cfg.target.get("classes")) == "0" and cfg.objective_on != "validation":
        raise UserError(
            "target.classes=0 leaves no target to measure the objective on; set "
            "objective_on=validation (meta-val classes) or name targets"
        )
    if cfg.resume and not Path(cfg.resume).is_file():
        raise UserError(
            f"resume='{cfg.resume}' is not a file; point resume at a run's checkpoints/last.pt"
        )


def adapt_and_measure(
    cfg: DictConfig,
    inits: Initializations,
    target: Target,
    evaluate: Evaluate,
    fidelity_unavailable: str | None,
    writer: SummaryWriter,
    paths: outputs.RunPaths,
    prec: Precision,
    label: str,
) -> Outcome:
    """Stages 4-6 for one target: adapt every arm to its shots, generate, evaluate; the main
    arm's adapted GAN and every arm's sample grids are written as they are made."""

    def measure(gan: GAN) -> dict[str, float]:
        return evaluate(generate(gan, target, cfg), target)

    adapted = adapt_arms(cfg, inits, target.shots, writer, prec, measure, label)
    fakes = {name: generate(arm.gan, target, cfg) for name, arm in adapted.items()}
    curves = {name: arm.curve for name, arm in adapted.items()}
    results = measure_arms(fakes, curves, target, evaluate, int(cfg.finetune.steps))
    config = OmegaConf.to_container(cfg, resolve=True)
    outputs.save_finetuned(
        adapted[inits.main].gan, target, paths.finetuned(target),
        {"config_hash": build.config_hash(cfg), "config": config},
    )  # fmt: skip
    outputs.save_samples(paths.samples(target), target, fakes, writer, label)
    report.show(results, inits.main, writer, int(cfg.finetune.steps), label)
    shown = {name: fake[: outputs.SHOWN_PER_ARM] for name, fake in fakes.items()}
    return Outcome(target, results, curves, fakes[inits.main], shown, fidelity_unavailable)


def run(cfg: DictConfig) -> float:
    check(cfg)
    paths = outputs.RunPaths.prepare(Path(HydraConfig.get().runtime.output_dir), cfg.generate.out)
    device = hardware.setup(
        cfg.hardware.device,
        cfg.hardware.threads,
        cfg.hardware.deterministic,
        cfg.seed,
        reuse_memory=bool(cfg.hardware.reuse_memory),
    )
    t_start = time.perf_counter()
    # 1. data and split: the targets are held out before the split is drawn
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
        int(cfg.target.shots),
    )  # fmt: skip
    if cfg.objective_on == "validation" and not data.split.val:
        raise UserError(
            "objective_on=validation but the split has no meta-val class; raise "
            "dataset.val_fraction or use objective_on=targets"
        )
    # 2. models, and what measures them
    init = build.gan(cfg, device)
    check_pairs(cfg, init, min((t.shots.shape[0] for t in data.targets),
                               default=int(cfg.target.shots)))  # fmt: skip
    prec = build.precision(cfg, device, init)
    log.info(
        "device %s, precision %s%s (hardware.precision=%s, %.2fM weights)%s", device, prec.name,
        " channels-last" if prec.channels_last else "", cfg.hardware.precision,
        sum(p.numel() for p in init.parameters()) / 1e6,
        ", torch.compile on" if cfg.hardware.compile else "",
    )  # fmt: skip
    evaluate, metric_info = build.evaluator(cfg, data, device)
    fidelity = metric_info["fidelity"]

    writer = SummaryWriter(str(paths.run / "tensorboard"))
    writer.add_text("config", "```\n" + OmegaConf.to_yaml(cfg, resolve=True) + "\n```")
    # 3. the initializations: meta-learned, and the baselines
    inits = initializations(cfg, data, init, evaluate, writer, paths.checkpoints, device, prec)
    timing = dict(inits.timing)

    # 4-6. adapt every arm to each target, generate, evaluate
    many = len(data.targets) > 1
    outcomes = []
    t0 = time.perf_counter()
    for target in data.targets:
        unavailable = fidelity.unavailable(target)
        if unavailable:
            log.warning("fidelity: %s", unavailable)
        for reason in set(heldout_unavailable(target).values()):
            log.warning("%s", reason)
        label = folder_name(target.class_name) if many else ""
        outcomes.append(adapt_and_measure(
            cfg, inits, target, evaluate, unavailable, writer, paths, prec, label
        ))  # fmt: skip
    timing["adapt_and_measure_s"] = time.perf_counter() - t0

    # 7. write the synthetic images and the report (none without targets)
    chash = build.config_hash(cfg)
    manifest = {"count": 0} if not outcomes else write_synthetic(
        {o.target.class_name: o.images for o in outcomes},
        paths.synthetic,
        {"seed": cfg.seed, "noise_seed": noise_seed(cfg), "meta_algo": inits.main,
         "config_hash": chash, "finetune_steps": int(cfg.finetune.steps),
         "shots": int(cfg.target.shots),
         # what `metaaug fewshot fewshot.synthetic_path=...` needs to use these images honestly
         "dataset": cfg.dataset.name, "from_path": cfg.target.path is not None,
         "meta_train_classes": list(data.split.train)},
        {o.target.class_name: {"shot_rows": list(o.target.shot_rows),
                               "source_checkpoint": str(paths.finetuned(o.target))}
         for o in outcomes},
    )  # fmt: skip
    if outcomes:
        outputs.overview(
            [(o.target, o.shown) for o in outcomes], paths.run / "samples" / "overview.png"
        )
    mean, sd = across([o.results for o in outcomes])
    curve_mean = {arm: across([o.curves[arm] for o in outcomes]) for arm in inits.arms}
    if many:
        report.show(mean, inits.main, writer, int(cfg.finetune.steps))
        report.show_spread(mean, sd, len(outcomes))
    timing["total_s"] = time.perf_counter() - t_start
    for key, value in timing.items():
        writer.add_scalar(f"time/{key}", value, 0)

    if cfg.objective_on == "validation":
        last = max(inits.validation)
        value = float(inits.validation[last][cfg.objective])
        over = f"validation at meta-iteration {last} (mean over meta-val classes)"
    else:
        value = float(mean[inits.main][cfg.objective])
        over = "mean over targets" if many else "the target"
    report.write(paths.run / "metrics.json", {
        "objective": {"name": cfg.objective, "value": value, "arm": inits.main, "over": over},
        "seed": cfg.seed,
        "config_hash": chash,
        "dataset": cfg.dataset.name,
        "image_size": int(cfg.dataset.image_size),
        "channels": int(cfg.dataset.channels),
        "hardware": {"device": str(device), "precision": prec.name,
                     "precision_asked": str(cfg.hardware.precision),
                     "channels_last": prec.channels_last, "compile": bool(cfg.hardware.compile),
                     "threads": torch.get_num_threads(),
                     "ranks": distributed.world().size},
        "target": {"classes": [o.target.class_name for o in outcomes],
                   "shots": int(cfg.target.shots), "path": cfg.target.path},
        # the protocol behind `fidelity` and `ceiling` (docs/metrics.md)
        "fidelity": {"classifier_path": fidelity.path,
                     "unavailable": {o.target.class_name: o.unavailable for o in outcomes
                                     if o.unavailable}},
        # which classes (and, split by group, which groups) went where
        "split": {"by": data.split.by, "train": list(data.split.train),
                  "val": list(data.split.val), "test": list(data.split.test),
                  **({"groups": data.split.groups()} if data.split.by == "group" else {})},
        "metric": {"name": cfg.metric.name, "classifier_accuracy": metric_info["accuracy"],
                   "classifier_path": str(metric_info["path"])},
        "finetune_steps": int(cfg.finetune.steps),
        "meta_iterations": int(cfg.meta_algo.iterations),
        # the main arm's validations: meta-iteration -> mean over the meta-val classes
        "validation": {"classes": list(data.split.val[: int(cfg.validation.classes)]),
                       "steps": int(cfg.validation.steps),
                       "history": {str(k): v for k, v in inits.validation.items()}},
        # mean and sd over targets (sd 0 for one target); per target below
        "results": mean,
        "results_sd": sd,
        "curves": {arm: {str(k): v for k, v in m.items()} for arm, (m, _) in curve_mean.items()},
        "targets": [
            {"class_name": o.target.class_name, "shots": int(o.target.shots.shape[0]),
             "heldout": int(o.target.heldout.shape[0]), "results": o.results,
             # metric -> why it is null in `results`
             "unavailable": heldout_unavailable(o.target)
             | ({"fidelity": o.unavailable, "ceiling": o.unavailable} if o.unavailable else {}),
             "curves": {arm: {str(k): v for k, v in pts.items()} for arm, pts in o.curves.items()},
             "synthetic": str(paths.synthetic / folder_name(o.target.class_name))}
            for o in outcomes
        ],
        "timing": timing,
        "synthetic": {"path": str(paths.synthetic) if outcomes else None,
                      "count": manifest["count"]},
    })  # fmt: skip
    final = mean[inits.main] if outcomes else inits.validation[max(inits.validation)]
    report.hparams(writer, OmegaConf.to_container(cfg, resolve=True), final)
    writer.close()
    log.info(
        "wrote %d synthetic images of %d class(es) to %s; %s=%.4g",
        manifest["count"], len(outcomes), paths.synthetic, cfg.objective, value,
    )  # fmt: skip
    return value


def resume_hint(run_dir: Path) -> str | None:
    """How a run stopped outside meta-training goes on (meta-training defers the signal and
    says it itself): from its last.pt, once there is one."""
    last = run_dir / "checkpoints" / "last.pt"
    return f"continue with resume={last} and the same overrides" if last.is_file() else None


@hydra.main(config_path="../conf", config_name="train", version_base="1.3")
@exits_on_user_error(keys=keys.TRAIN)
def main(cfg: DictConfig) -> float:
    run_dir = Path(HydraConfig.get().runtime.output_dir)
    with run_dir_lock(run_dir), continue_with(lambda: resume_hint(run_dir)):
        return run(cfg)  # (the lock: one process per run directory)
