"""Stage: adapt every arm's initialization to one target's shots (the fine-tune)."""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from omegaconf import DictConfig
from torch import Tensor, nn
from torch.utils.tensorboard import SummaryWriter

from metaaug import hardware
from metaaug.commands import build
from metaaug.errors import Diverged
from metaaug.meta.adapt import adapt
from metaaug.meta.settings import OptimizerSpec
from metaaug.metrics.names import REPORTED
from metaaug.models.gan import GAN
from metaaug.pipeline.initialize import Initializations
from metaaug.precision import Precision
from metaaug.training.guard import Guard, check_step

log = logging.getLogger("metaaug.train")
_NO_WEIGHTS = nn.Module()  # a step's losses alone are checked against it

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

    A non-finite loss or weight raises `Diverged`; with `guard.on_divergence=rollback` the
    fine-tune restarts from `init` at `guard.lr_factor` times the learning rate, at most
    `guard.max_rollbacks` times.
    """
    guard = Guard.from_config(cfg.guard)
    spec = build.optimizer(cfg.finetune.optimizer)
    for attempt in range(guard.retries() + 1):
        try:
            return _finetune_once(init, shots, cfg, spec, writer, tag, prec, measure)
        except Diverged as err:
            if attempt == guard.retries():
                raise guard.final(err, "finetune.optimizer.lr") from None
            spec = replace(spec, lr=spec.lr * guard.lr_factor)
            log.warning("guard: %s; rollback %d of %d: fine-tune again at lr %.3g",
                        err, attempt + 1, guard.max_rollbacks, spec.lr)  # fmt: skip
    raise AssertionError("unreachable")


def _finetune_once(
    init: GAN,
    shots: Tensor,
    cfg: DictConfig,
    spec: OptimizerSpec,
    writer: SummaryWriter,
    tag: str,
    prec: Precision,
    measure: Callable[[GAN], dict[str, float]] | None,
) -> Adapted:
    gan = copy.deepcopy(init)
    device = next(gan.parameters()).device
    eval_steps = {int(s) for s in cfg.finetune.eval_steps or ()}
    curve: Curve = {}
    # the weights are checked at the last step and before each measurement; a loss every step
    checked = eval_steps | {int(cfg.finetune.steps)}
    where = f"fine-tune step {{}} of {tag}"
    last_good = "nothing of this fine-tune was written"

    def on_step(step: int, d: float, g: float) -> None:
        losses = {"loss_D": d, "loss_G": g}
        if step + 1 in checked:
            check_step(where.format(step + 1), losses, gan, last_good)
        else:
            check_step(where.format(step + 1), losses, _NO_WEIGHTS, last_good)
        writer.add_scalar(f"{tag}/loss_D", d, step)
        writer.add_scalar(f"{tag}/loss_G", g, step)
        if measure is not None and step + 1 in eval_steps:
            curve[step + 1] = measure(gan)
            for key in REPORTED:
                writer.add_scalar(f"{tag}/curve/{key}", curve[step + 1][key], step + 1)

    adapt(
        gan,
        shots.to(device),
        int(cfg.finetune.steps),
        spec,
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
