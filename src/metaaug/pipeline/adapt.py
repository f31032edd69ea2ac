"""Stage: adapt every arm's initialization to one target's shots (the fine-tune)."""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field

from omegaconf import DictConfig
from torch import Tensor
from torch.utils.tensorboard import SummaryWriter

from metaaug import hardware
from metaaug.commands import build
from metaaug.meta.adapt import adapt
from metaaug.models.gan import GAN
from metaaug.pipeline.initialize import Initializations
from metaaug.precision import Precision
from metaaug.training.meta_loop import SHOWN

Curve = dict[int, dict[str, float]]  # fine-tune step -> metrics after it


@dataclass
class Adapted:
    """One arm adapted to one target, and its quality curve (`finetune.eval_steps`)."""

    gan: GAN
    curve: Curve = field(default_factory=dict)


def finetune(
    init: GAN,
    shots: Tensor,
    cfg: DictConfig,
    writer: SummaryWriter,
    tag: str,
    prec: Precision,
    measure: Callable[[GAN], dict[str, float]] | None = None,
) -> Adapted:
    """A copy of `init` adapted to `shots`; logs its losses under `<tag>/`.

    At each step listed in `finetune.eval_steps`, `measure(gan)` measures the GAN so far (a
    quality-vs-budget curve). Every arm and target draws the same noise (seed + 1).
    """
    gan = copy.deepcopy(init)
    device = next(gan.parameters()).device
    eval_steps = {int(s) for s in cfg.finetune.eval_steps or ()}
    curve: Curve = {}

    def on_step(step: int, d: float, g: float) -> None:
        writer.add_scalar(f"{tag}/loss_D", d, step)
        writer.add_scalar(f"{tag}/loss_G", g, step)
        if measure is not None and step + 1 in eval_steps:
            curve[step + 1] = measure(gan)
            for key in SHOWN:
                writer.add_scalar(f"{tag}/curve/{key}", curve[step + 1][key], step + 1)

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
    return Adapted(gan, curve)


def adapt_arms(
    cfg: DictConfig,
    inits: Initializations,
    shots: Tensor,
    writer: SummaryWriter,
    prec: Precision,
    measure: Callable[[GAN], dict[str, float]] | None = None,
    label: str = "",
) -> dict[str, Adapted]:
    """Every arm of `inits` adapted to `shots`, the main arm first; `label` (a target's folder
    name when a run has several) extends the log tags."""
    suffix = f"/{label}" if label else ""
    adapted = {}
    for name, init in inits.arms.items():
        tag = ("finetune" if name == inits.main else f"baseline/{name}") + suffix
        adapted[name] = finetune(init, shots, cfg, writer, tag, prec, measure)
    return adapted
