"""Stages 4-7 of a train run. Once per target: adapt every arm to the target's shots, generate,
measure; the main arm's adapted GAN and every arm's sample grids are written as they are made.
Then the main arm's synthetic images of every target."""

from __future__ import annotations

import logging
import time

from torch import Tensor

from metaaug.data.target import Target
from metaaug.io.synthetic import folder_name, write_synthetic
from metaaug.metrics.shot_spread import shot_spread
from metaaug.models.conditioning import conditioning
from metaaug.models.gan import GAN
from metaaug.pipeline import outputs, report
from metaaug.pipeline.adapt import adapt_arms
from metaaug.pipeline.generate import generate, noise_seed
from metaaug.pipeline.initialize import Initializations
from metaaug.pipeline.measure import Outcome, heldout_unavailable, measure_arms
from metaaug.pipeline.settings import RunContext

log = logging.getLogger("metaaug.train")


def each_target(ctx: RunContext, inits: Initializations) -> tuple[list[Outcome], float]:
    """Every target's outcome, in turn, and the seconds they took."""
    t0 = time.perf_counter()
    outcomes = [adapt_and_measure(ctx, inits, target) for target in ctx.data.targets]
    return outcomes, time.perf_counter() - t0


def adapt_and_measure(ctx: RunContext, inits: Initializations, target: Target) -> Outcome:
    """One target: adapt every arm to its shots, generate, measure, write its GAN and grids."""
    unavailable = ctx.fidelity.unavailable(target)
    if unavailable:
        log.warning("fidelity: %s", unavailable)
    for reason in set(heldout_unavailable(target).values()):
        log.warning("%s", reason)
    label = folder_name(target.class_name) if len(ctx.data.targets) > 1 else ""
    s = ctx.sampling

    def images(gan: GAN) -> Tensor:
        return generate(gan, target, s.num_images, s.batch_size, s.seed)

    def measure(gan: GAN) -> dict[str, float]:
        return ctx.evaluate(images(gan), target)

    adapted = adapt_arms(inits, target.shots, ctx.finetune, ctx.writer, measure, label)
    fakes = {name: images(arm.gan) for name, arm in adapted.items()}
    curves = {name: arm.curve for name, arm in adapted.items()}
    results = measure_arms(fakes, curves, target, ctx.evaluate, ctx.finetune.steps)
    for name, arm in adapted.items():  # image i from shot i mod k: does z move the image?
        if conditioning(arm.gan.generator).one_shot_each:  # not fusion: each image reads all
            spread = shot_spread(fakes[name], len(target.shots))
            results[name] = {**results[name], "shot_spread": spread}  # not the curve's dict
    outputs.save_finetuned(
        adapted[inits.main].gan, target, ctx.paths.finetuned(target),
        {"config_hash": ctx.record["config_hash"], "config": ctx.config},
    )  # fmt: skip
    outputs.save_samples(ctx.paths.samples(target), target, fakes, ctx.writer, label)
    report.show(results, inits.main, ctx.writer, ctx.finetune.steps, label)
    shown = {name: fake[: outputs.SHOWN_PER_ARM] for name, fake in fakes.items()}
    return Outcome(target, results, curves, fakes[inits.main], shown, unavailable)


def write_images(ctx: RunContext, inits: Initializations, outcomes: list[Outcome]) -> dict:
    """Stage 7: the main arm's synthetic images of every target (with their manifest) and
    `samples/overview.png`; the manifest's summary (`count`: 0 without targets)."""
    if not outcomes:
        return {"count": 0}
    r = ctx.record
    manifest = write_synthetic(
        {o.target.class_name: o.images for o in outcomes},
        ctx.paths.synthetic,
        {"seed": r["seed"], "noise_seed": noise_seed(r["seed"]), "meta_algo": inits.main,
         "config_hash": r["config_hash"], "finetune_steps": r["finetune_steps"],
         "shots": r["target"]["shots"],
         # what `metaaug fewshot fewshot.synthetic_path=...` needs to use these images honestly
         "dataset": r["dataset"], "from_path": r["target"]["path"] is not None,
         "meta_train_classes": r["split"]["train"]},
        {o.target.class_name: {"shot_rows": list(o.target.shot_rows),
                               "source_checkpoint": str(ctx.paths.finetuned(o.target))}
         for o in outcomes},
    )  # fmt: skip
    outputs.overview(
        [(o.target, o.shown) for o in outcomes], ctx.paths.run / "samples" / "overview.png"
    )
    return manifest
