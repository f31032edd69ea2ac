"""`metaaug train`: meta-train a GAN initialization, fine-tune it on the few-shot target, write
synthetic images, measure them against held-out real images, compare with the baselines."""

from __future__ import annotations

import copy
import json
import logging
import math
import sys
import time
from collections.abc import Callable
from importlib.resources import files
from pathlib import Path
from typing import Any

import hydra
import torch
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf
from torch.utils.tensorboard import SummaryWriter

from metaaug import hardware
from metaaug.commands import build
from metaaug.data.tasks import TaskSampler
from metaaug.errors import UserError, exits_on_user_error
from metaaug.io.checkpoint import load, save_atomic
from metaaug.io.images import (
    ensure_empty_dir,
    ensure_outputs_free,
    grid,
    save_grid,
    write_synthetic,
)
from metaaug.io.tensorboard import log_hparams
from metaaug.meta.adapt import adapt, sample
from metaaug.meta.functional import conditioning
from metaaug.models.gan import GAN
from metaaug.precision import Precision
from metaaug.training.meta_loop import SHOWN, Evaluate, Validation, meta_train

OBJECTIVES = ("fid", "kid", "is", "memorization", "fidelity")
# Outputs that mark a run directory as used; Hydra's own .hydra/ and train.log are expected.
RUN_OUTPUTS = ("checkpoints", "synthetic", "samples", "tensorboard", "metrics.json")

log = logging.getLogger("metaaug.train")


def _progress(setting: Any) -> bool:
    return sys.stderr.isatty() if setting == "auto" else bool(setting)


def _check_pairs(cfg: DictConfig, init: GAN, shots: int) -> None:
    """An image-conditioned GAN adapts on pairs of images of one class: 1 shot cannot do it."""
    if conditioning(init.generator) != "image" or shots >= 2:
        return
    validating = cfg.validation.every > 0 and cfg.validation.steps > 0
    busy = [key for key, on in (("finetune.steps", cfg.finetune.steps > 0),
                                ("validation.steps", validating)) if on]  # fmt: skip
    if busy:
        raise UserError(
            f"gan={cfg.gan.name} fine-tunes on pairs of shots but target.shots={shots}; use "
            f"target.shots >= 2, or {' '.join(f'{k}=0' for k in busy)} to generate from the "
            "shot without fine-tuning"
        )


def finetune(
    init: GAN,
    shots: torch.Tensor,
    cfg: DictConfig,
    writer: SummaryWriter,
    tag: str,
    prec: Precision,
    curve: Callable[[GAN], dict[str, float]] | None = None,
) -> tuple[GAN, dict[int, dict[str, float]]]:
    """A copy of `init` adapted to the target shots; logs its losses under `<tag>/`.

    At each step listed in `finetune.eval_steps`, `curve(gan)` measures the GAN so far; the
    returned dict maps those steps to their metrics (a quality-vs-budget curve).
    """
    gan = copy.deepcopy(init)
    device = next(gan.parameters()).device
    eval_steps = {int(s) for s in cfg.finetune.eval_steps or ()}
    points: dict[int, dict[str, float]] = {}

    def on_step(step: int, d: float, g: float) -> None:
        writer.add_scalar(f"{tag}/loss_D", d, step)
        writer.add_scalar(f"{tag}/loss_G", g, step)
        if curve is not None and step + 1 in eval_steps:
            points[step + 1] = curve(gan)
            for key in SHOWN:
                writer.add_scalar(f"{tag}/curve/{key}", points[step + 1][key], step + 1)

    adapt(
        gan,
        shots.to(device),
        int(cfg.finetune.steps),
        build.optimizer(cfg.finetune.optimizer),
        build.adversarial(cfg),
        hardware.generator(cfg.seed + 1),
        batch_size=cfg.finetune.batch_size,
        augment=build.augment(cfg),
        on_step=on_step,
        precision=prec,
    )
    return gan, points


def _meta_train(
    cfg: DictConfig,
    meta: DictConfig,
    data: build.Data,
    init: GAN,
    evaluate: Evaluate,
    writer: SummaryWriter,
    ckpt_dir: Path,
    device: torch.device,
    prec: Precision,
    tag: str = "",
) -> dict[str, float]:
    """Build the meta-algorithm `meta` (a meta_algo node), its sampler and validation; run
    meta-training on `init` in place. `tag` marks a baseline (no resume, own log tags)."""
    adv = build.adversarial(cfg)
    algo = build.meta_algorithm(meta, cfg, adv, prec)
    rng = hardware.generator(cfg.seed)
    # classes per task: the class-conditional GAN's `gan.ways`, unless the algorithm sets it
    ways = int(meta.get("ways", cfg.gan.get("ways", 1)))
    if ways > 1 and conditioning(init.generator) == "image":
        raise UserError(
            f"an image-conditioned GAN learns from one class per task, but ways={ways}; "
            "drop meta_algo.ways / gan.ways"
        )
    sampler = TaskSampler(
        data.classes, data.split.train, int(meta.support), int(meta.query), seed=cfg.seed,
        ways=ways,
    )  # fmt: skip
    start = 0
    if cfg.resume and not tag:
        state = load(cfg.resume, map_location=device)
        init.load_state_dict(state["gan"])
        algo.load_state_dict(state["algorithm"])
        rng.set_state(state["rng"])
        sampler.generator.set_state(state["sampler_rng"])
        start = int(state["iteration"])
        log.info("resumed from %s at meta-iteration %d", cfg.resume, start)
    val_classes = [data.references[name] for name in data.split.val[: int(cfg.validation.classes)]]
    validation = Validation(
        every=int(cfg.validation.every),
        classes=val_classes,
        steps=int(cfg.validation.steps),
        num_images=int(cfg.validation.num_images),
        optimizer=build.optimizer(cfg.finetune.optimizer),
        adversarial=adv,
        augment=build.augment(cfg),
        evaluate=evaluate,
        seed=cfg.seed,
        precision=prec,
    )
    return meta_train(
        init,
        algo,
        sampler,
        iterations=int(meta.iterations),
        meta_batch_size=int(meta.meta_batch_size),
        rng=rng,
        writer=writer,
        validation=validation if cfg.validation.every > 0 and val_classes and not tag else None,
        checkpoint_dir=ckpt_dir,
        checkpoint_every=int(cfg.checkpoint.every),
        start=start,
        progress=_progress(cfg.progress),
        tag=tag,
    )


def _pretrained(
    cfg: DictConfig,
    data: build.Data,
    random_init: GAN,
    evaluate: Evaluate,
    writer: SummaryWriter,
    ckpt_dir: Path,
    device: torch.device,
    prec: Precision,
    timing: dict[str, float],
) -> GAN:
    """The plain transfer baseline: the same random initialization pre-trained on all
    meta-train classes pooled (settings in `baselines.pretrain`)."""
    node = OmegaConf.load(files("metaaug.conf") / "meta_algo" / "pretrain.yaml")
    meta = OmegaConf.merge({"baselines": cfg.baselines}, {"meta_algo": node}).meta_algo
    gan = copy.deepcopy(random_init)
    figures = _meta_train(
        cfg, meta, data, gan, evaluate, writer, ckpt_dir / "baseline_pretrain", device, prec,
        tag="baseline/pretrain/",
    )  # fmt: skip
    timing["pretrain_s"] = figures["meta_train_s"]
    return gan


def run(cfg: DictConfig) -> float:
    hc = HydraConfig.get()
    run_dir = Path(hc.runtime.output_dir)
    synthetic_dir = Path(cfg.generate.out) if cfg.generate.out else run_dir / "synthetic"
    ensure_outputs_free(run_dir, RUN_OUTPUTS)
    ensure_empty_dir(synthetic_dir, "generate.out")
    if cfg.objective not in OBJECTIVES:
        raise UserError(f"objective={cfg.objective!r} is not known; use one of {OBJECTIVES}")
    if cfg.resume and not Path(cfg.resume).is_file():
        raise UserError(
            f"resume='{cfg.resume}' is not a file; point resume at a run's checkpoints/last.pt"
        )
    device = hardware.setup(
        cfg.hardware.device,
        cfg.hardware.threads,
        cfg.hardware.deterministic,
        cfg.seed,
        reuse_memory=bool(cfg.hardware.reuse_memory),
    )
    t_start = time.perf_counter()
    data = build.data(cfg)
    target = data.target
    log.info(
        "dataset %s: %d meta-train / %d meta-val / %d meta-test classes; target %r with %d "
        "shots and %d held-out images",
        cfg.dataset.name, len(data.split.train), len(data.split.val), len(data.split.test),
        target.class_name, target.shots.shape[0], target.heldout.shape[0],
    )  # fmt: skip
    init = build.gan(cfg, device)
    _check_pairs(cfg, init, target.shots.shape[0])
    prec = build.precision(cfg, device, init)
    log.info(
        "device %s, precision %s%s (hardware.precision=%s, %.2fM weights)%s", device, prec.name,
        " channels-last" if prec.channels_last else "", cfg.hardware.precision,
        sum(p.numel() for p in init.parameters()) / 1e6,
        ", torch.compile on" if cfg.hardware.compile else "",
    )  # fmt: skip
    random_init = copy.deepcopy(init)  # the scratch baseline starts where meta-training did
    evaluate, metric_info = build.evaluator(cfg, data, device)
    no_fidelity = metric_info["fidelity"].unavailable(target)
    if no_fidelity:
        log.warning("fidelity: %s", no_fidelity)

    writer = SummaryWriter(str(run_dir / "tensorboard"))
    writer.add_text("config", "```\n" + OmegaConf.to_yaml(cfg, resolve=True) + "\n```")
    ckpt_dir = run_dir / "checkpoints"
    chash = build.config_hash(cfg)
    timing: dict[str, float] = {}
    algo_name = str(cfg.meta_algo.name)

    # 1. meta-train the initialization on tasks from meta-train classes
    if cfg.meta_algo.algorithm is not None and cfg.meta_algo.iterations > 0:
        timing |= _meta_train(
            cfg, cfg.meta_algo, data, init, evaluate, writer, ckpt_dir, device, prec
        )
    save_atomic(
        {"gan": init.state_dict(), "meta_algo": algo_name, "config_hash": chash,
         "config": OmegaConf.to_container(cfg, resolve=True),
         # the classes this initialization learned from: `fewshot` refuses to test on them
         "classes": {"train": list(data.split.train)}},
        ckpt_dir / "meta_init.pt",
    )  # fmt: skip

    # 2. fine-tune on the target shots (and the baselines on the same shots)
    n = int(cfg.generate.num_images)
    gen_seed = cfg.seed + 2

    def generate(gan: GAN) -> torch.Tensor:
        # the same noise for every arm and step, so grids compare image for image
        return sample(
            gan, n, hardware.generator(gen_seed), int(cfg.generate.batch_size), target.shots
        )

    def measure(gan: GAN) -> dict[str, float]:
        return evaluate(generate(gan), target)

    starts = {algo_name: init}
    if cfg.compare_baselines:
        if algo_name != "scratch":
            starts["scratch"] = random_init
        if algo_name not in ("scratch", "pretrain"):
            starts["pretrain"] = _pretrained(
                cfg, data, random_init, evaluate, writer, ckpt_dir, device, prec, timing
            )
    arms: dict[str, GAN] = {}
    curves: dict[str, dict[int, dict[str, float]]] = {}
    t0 = time.perf_counter()
    for name, start_gan in starts.items():
        tag = "finetune" if name == algo_name else f"baseline/{name}"
        arms[name], curves[name] = finetune(
            start_gan, target.shots, cfg, writer, tag, prec, measure
        )
    timing["finetune_s"] = time.perf_counter() - t0
    tuned = arms[algo_name]
    save_atomic(
        {"gan": tuned.state_dict(), "generator": tuned.generator.state_dict(),
         "target": target.class_name, "shots": target.shots.cpu(), "config_hash": chash,
         "config": OmegaConf.to_container(cfg, resolve=True)},
        ckpt_dir / "finetuned.pt",
    )  # fmt: skip

    # 3. generate
    fakes = {name: generate(gan) for name, gan in arms.items()}
    manifest = write_synthetic(
        fakes[algo_name],
        synthetic_dir,
        target.class_name,
        {"seed": cfg.seed, "noise_seed": gen_seed, "meta_algo": algo_name,
         "source_checkpoint": str(ckpt_dir / "finetuned.pt"), "config_hash": chash,
         "finetune_steps": int(cfg.finetune.steps), "shots": int(target.shots.shape[0]),
         # what `metaaug fewshot fewshot.synthetic_path=...` needs to use these images honestly
         "dataset": cfg.dataset.name, "from_path": cfg.target.path is not None,
         "shot_rows": list(target.shot_rows), "meta_train_classes": list(data.split.train)},
    )  # fmt: skip
    k = target.shots.shape[0]
    save_grid(target.shots, run_dir / "samples" / "target_shots.png", nrow=k)
    writer.add_image("target/shots", grid(target.shots, k), 0)
    for name, fake in fakes.items():
        save_grid(fake[:64], run_dir / "samples" / f"{name}.png")
        writer.add_image(f"target/{name}", grid(fake[:64]), 0)

    # 4. evaluate against the held-out images; copying the shots is the reference a GAN
    #    that memorizes would match (FID against held-out drawings rewards copying)
    t0 = time.perf_counter()
    reps = math.ceil(n / k)
    copies = target.shots.cpu().repeat(reps, 1, 1, 1)[:n]
    last = int(cfg.finetune.steps)  # a curve point at the last step is these same images
    results = {
        name: curves[name].get(last) or evaluate(fake, target) for name, fake in fakes.items()
    }
    results["copy_shots"] = evaluate(copies, target)
    timing["metrics_s"] = time.perf_counter() - t0
    timing["total_s"] = time.perf_counter() - t_start
    for name, metrics in results.items():
        prefix = "metrics" if name == algo_name else f"baseline/{name}"
        for key in SHOWN:
            writer.add_scalar(f"{prefix}/{key}", metrics[key], int(cfg.finetune.steps))
        log.info("%s: %s", name, ", ".join(f"{k}={metrics[k]:.4g}" for k in SHOWN))
    for key, value in timing.items():
        writer.add_scalar(f"time/{key}", value, 0)

    value = float(results[algo_name][cfg.objective])
    report = {
        "objective": {"name": cfg.objective, "value": value, "arm": algo_name},
        "seed": cfg.seed,
        "config_hash": chash,
        "dataset": cfg.dataset.name,
        "image_size": int(cfg.dataset.image_size),
        "channels": int(cfg.dataset.channels),
        "hardware": {"device": str(device), "precision": prec.name,
                     "precision_asked": str(cfg.hardware.precision),
                     "channels_last": prec.channels_last, "compile": bool(cfg.hardware.compile),
                     "threads": torch.get_num_threads()},
        "target": {"class_name": target.class_name, "shots": k,
                   "heldout": int(target.heldout.shape[0]), "path": cfg.target.path},
        # the protocol behind `fidelity` and `ceiling` (docs/metrics.md)
        "fidelity": {"classifier_path": metric_info["fidelity"].path,
                     "unavailable": no_fidelity},
        "split": {"train": list(data.split.train), "val": list(data.split.val),
                  "test": list(data.split.test)},
        "metric": {"name": cfg.metric.name, "classifier_accuracy": metric_info["accuracy"],
                   "classifier_path": str(metric_info["path"])},
        "finetune_steps": int(cfg.finetune.steps),
        "meta_iterations": int(cfg.meta_algo.iterations),
        "results": results,
        "curves": {arm: {str(k): v for k, v in pts.items()} for arm, pts in curves.items()},
        "timing": timing,
        "synthetic": {"path": str(synthetic_dir), "count": manifest["count"]},
    }  # fmt: skip
    (run_dir / "metrics.json").write_text(json.dumps(report, indent=2, default=float) + "\n")
    log_hparams(
        writer,
        OmegaConf.to_container(cfg, resolve=True),
        {k: results[algo_name][k] for k in SHOWN},
    )
    writer.close()
    log.info("wrote %d synthetic images to %s; %s=%.4g", n, synthetic_dir, cfg.objective, value)
    return value


@hydra.main(config_path="../conf", config_name="train", version_base="1.3")
@exits_on_user_error
def main(cfg: DictConfig) -> float:
    return run(cfg)
