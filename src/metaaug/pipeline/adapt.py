"""Stage: adapt every arm's initialization to one target's shots (the fine-tune)."""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable
from dataclasses import dataclass, replace

from torch import Tensor, nn
from torch.utils.tensorboard import SummaryWriter

from metaaug import hardware
from metaaug.errors import Diverged
from metaaug.meta.adapt import adapt
from metaaug.metrics.names import REPORTED
from metaaug.models.gan import GAN
from metaaug.pipeline.initialize import Initializations
from metaaug.pipeline.settings import Finetune
from metaaug.training.guard import check_step

log = logging.getLogger("metaaug.train")
_NO_WEIGHTS = nn.Module()  # a step's losses alone are checked against it

Curve = dict[int, dict[str, float]]  # fine-tune step -> metrics after it
Measure = Callable[[GAN], dict[str, float]]


@dataclass
class Adapted:
    """One arm adapted to one target, and its quality curve (`finetune.eval_steps`)."""

    gan: GAN
    curve: Curve


def finetune(
    init: GAN,
    shots: Tensor,
    how: Finetune,
    writer: SummaryWriter,
    tag: str,
    measure: Measure | None = None,
) -> Adapted:
    """A copy of `init` adapted to `shots` as `how` says; logs its losses under `<tag>/`.

    At each of `how.eval_steps`, `measure(gan)` measures the GAN so far (a quality-vs-budget
    curve).

    A non-finite loss or weight raises `Diverged`; with `guard.on_divergence=rollback` the
    fine-tune restarts from `init` at `guard.lr_factor` times the learning rate, at most
    `guard.max_rollbacks` times.
    """
    guard = how.guard

    def attempt() -> Adapted:
        return _finetune_once(init, shots, how, writer, tag, measure)

    def rollback(err: Diverged, n: int) -> None:
        nonlocal how
        how = replace(how, optimizer=replace(how.optimizer, lr=how.optimizer.lr * guard.lr_factor))
        log.warning("guard: %s; rollback %d of %d: fine-tune again at lr %.3g",
                    err, n + 1, guard.max_rollbacks, how.optimizer.lr)  # fmt: skip

    return guard.run(attempt, "finetune.optimizer.lr", rollback)


def _finetune_once(
    init: GAN, shots: Tensor, how: Finetune, writer: SummaryWriter, tag: str,
    measure: Measure | None,
) -> Adapted:  # fmt: skip
    gan = copy.deepcopy(init)
    device = next(gan.parameters()).device
    curve: Curve = {}
    # the weights are checked at the last step and before each measurement; a loss every step
    checked = how.eval_steps | {how.steps}
    where = f"fine-tune step {{}} of {tag}"
    last_good = "nothing of this fine-tune was written"

    def on_step(step: int, d: float, g: float) -> None:
        weights = gan if step + 1 in checked else _NO_WEIGHTS
        check_step(where.format(step + 1), {"loss_D": d, "loss_G": g}, weights, last_good)
        writer.add_scalar(f"{tag}/loss_D", d, step)
        writer.add_scalar(f"{tag}/loss_G", g, step)
        if measure is not None and step + 1 in how.eval_steps:
            curve[step + 1] = measure(gan)
            for key in REPORTED:
                writer.add_scalar(f"{tag}/curve/{key}", curve[step + 1][key], step + 1)

    adapt(
        gan,
        shots.to(device),
        how.steps,
        how.optimizer,
        how.adversarial,
        hardware.generator(how.seed + 1),
        batch_size=how.batch_size,
        augment=how.augment,
        on_step=on_step,
        precision=how.precision,
    )
    return Adapted(gan, curve)


def adapt_arms(
    inits: Initializations,
    shots: Tensor,
    how: Finetune,
    writer: SummaryWriter,
    measure: Measure,
    label: str,
) -> dict[str, Adapted]:
    """Every arm of `inits` adapted to `shots`, the main arm first; `label` (a target's folder
    name when a run has several) extends the log tags."""
    suffix = f"/{label}" if label else ""
    adapted = {}
    for name, init in inits.arms.items():
        tag = ("finetune" if name == inits.main else f"baseline/{name}") + suffix
        adapted[name] = finetune(init, shots, how, writer, tag, measure)
    return adapted
