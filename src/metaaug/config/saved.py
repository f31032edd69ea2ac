"""A GAN saved by `metaaug train`, rebuilt from the run config stored beside its weights:
adapted to new shots with that run's fine-tune settings, and sampled as the run sampled it.

`metaaug generate` and the Python API (`metaaug.api`) both go through here, and both adapt
with `pipeline.adapt.finetune`, the fine-tune of `metaaug train` itself: the same optimizer,
losses, augmentation, divergence guard and noise seeds.
"""

from __future__ import annotations

import copy
import logging
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf
from torch import Tensor

from metaaug import hardware
from metaaug.config import build, evaluator, validate
from metaaug.config.rules import table_of
from metaaug.config.schema import TrainCommand
from metaaug.data.folders import read_classes
from metaaug.errors import UserError
from metaaug.fewshot.trust import ClassJudge
from metaaug.gan.class_loss import ClassLoss
from metaaug.io.checkpoint import load, load_checked
from metaaug.meta.adapt import sample as sample_gan
from metaaug.models.conditioning import Conditioning, conditioning
from metaaug.models.gan import GAN
from metaaug.pipeline.generate import noise_seed

log = logging.getLogger("metaaug.generate")

KINDS = ("finetuned", "meta_init")
FIX = ("point it at a run's checkpoints/finetuned/<class>.pt (sampled as is) or "
       "checkpoints/meta_init.pt (adapted to shots=DIR first)")  # fmt: skip
# what a run config written before these keys existed fine-tunes with (train.yaml's defaults)
RUN_DEFAULTS = {"guard": {"on_divergence": "stop", "lr_factor": 0.5, "max_rollbacks": 3},
                "generate": {"batch_size": 256}}  # fmt: skip
# the nodes of a run config that rebuilding, adapting and sampling its GAN read
READ = ("seed", "target", "dataset", "gan", "finetune", "generate", "augment")


@dataclass(frozen=True)
class Saved:
    """A GAN from a checkpoint and what sampling and adapting it needs.

    `kind` is "finetuned" (adapted to `class_name`'s `shots`, the images an image-conditioned
    generator transforms), "meta_init" (an initialization, to adapt before sampling) or
    "adapted" (adapted here, by `adapt_saved`).
    `config` is the resolved config of the run that wrote it; `steps` the fine-tune steps
    behind the weights (0 for an initialization).
    """

    gan: GAN
    config: DictConfig
    kind: str
    path: str
    class_name: str | None = None
    shots: Tensor | None = None
    shot_rows: tuple[int, ...] | None = None  # rows of the shots in the dataset's class
    steps: int = 0
    meta_train_classes: tuple[str, ...] | None = None
    config_hash: str = ""  # the run's, as its manifest and metrics.json record it
    class_loss: ClassLoss | None = None  # gan.class_loss's term, to adapt it with

    @property
    def conditioning(self) -> Conditioning:
        return conditioning(self.gan.generator)


def _peek_kind(path: Path) -> str:
    """The kind a readable checkpoint declares ("" when it cannot be read: `load_checked`
    then says why)."""
    try:
        state = load(path)
    except Exception:
        return ""
    if not isinstance(state, dict):
        return ""
    return str(state.get("kind", "training_state" if "iteration" in state else "meta_init"))


def _run_config(state: dict[str, Any], path: Path, key: str) -> DictConfig:
    """The run config of a checkpoint: its own, else (a finetuned checkpoint written before
    they held one) the one in the run's meta_init.pt beside checkpoints/finetuned/."""
    if "config" in state:
        return _complete(OmegaConf.merge(RUN_DEFAULTS, state["config"]), path, key)
    sibling = path.parent.parent / "meta_init.pt"
    if state.get("kind") == "finetuned" and sibling.is_file():
        init = load_checked(sibling, key, "meta_init", FIX)
        if "config" in init:
            return _complete(OmegaConf.merge(RUN_DEFAULTS, init["config"]), path, key)
    raise UserError(
        f"{key}='{path}' holds no run config to rebuild its GAN from (written by an older "
        f"metaaug), and no meta_init.pt with one is beside it; {FIX}"
    )


def _complete(run: DictConfig, path: Path, key: str) -> DictConfig:
    """`run`, refused in one line when it lacks a key the GAN is rebuilt, adapted or sampled
    with (a config edited by hand: `metaaug train` stores every one)."""
    needed = [k for k, rule in table_of(TrainCommand).items()
              if k.split(".")[0] in READ and not rule.optional]  # fmt: skip
    absent = object()
    lacking = [k for k in (*needed, "meta_algo.name")
               if OmegaConf.select(run, k, default=absent) is absent]  # fmt: skip
    if lacking:
        raise UserError(
            f"{key}='{path}' holds a run config without {', '.join(lacking[:3])} (was it "
            f"edited?); {FIX}"
        )
    return run


def load_saved(
    path: str | Path,
    key: str = "checkpoint",
    device: str | torch.device = "cpu",
    kinds: tuple[str, ...] = KINDS,
    fix: str = FIX,
) -> Saved:
    """The GAN of a checkpoint of one of `kinds` (`finetuned`, `meta_init`), rebuilt from its
    run's config on `device`, in eval mode. One line (UserError, ending in `fix`) for a
    missing, damaged, diverged or other kind of file."""
    path = Path(path).expanduser()
    kind = _peek_kind(path) if path.is_file() else ""
    state = load_checked(path, key, kind if kind in kinds else kinds[0], fix)
    run = _run_config(state, path, key)
    gan = build.gan(run, torch.device(device))
    try:
        gan.load_state_dict(state["gan"])
    except RuntimeError as err:
        raise UserError(
            f"{key}='{path}' does not fit the GAN its config describes "
            f"({str(err).splitlines()[0]}); {fix}"
        ) from None
    gan.eval()
    chash = str(state.get("config_hash") or build.config_hash(run))
    if kind == "meta_init":
        learned = state.get("classes", {}).get("train")
        classes = tuple(learned) if learned is not None else None
        term = state.get("class_loss")
        term = ClassLoss.from_state(term, torch.device(device)) if term is not None else None
        return Saved(gan, run, kind, str(path), config_hash=chash, meta_train_classes=classes,
                     class_loss=term)  # fmt: skip
    classes = _peek_classes(path.parent.parent / "meta_init.pt")  # its initialization's
    rows = state.get("shot_rows")
    return Saved(
        gan, run, kind, str(path), class_name=str(state.get("target", path.stem)),
        shots=state["shots"].float(), shot_rows=tuple(rows) if rows is not None else None,
        steps=run.finetune.steps, meta_train_classes=classes, config_hash=chash,
    )  # fmt: skip


def check_memory(saved: Saved, num_images: int, classes: int = 1) -> None:
    """Refuse, before any sampling, `num_images` a class whose images (float32, every class's
    held until written) exceed the machine's memory."""
    ram, ds = validate.ram_bytes(), saved.config.dataset
    per_image = ds.channels * ds.image_size**2 * 4
    need = num_images * classes * per_image
    if ram is None or need <= ram:
        return
    each = f"{classes} classes x " if classes > 1 else ""
    raise UserError(
        f"num_images={num_images} needs at least {need / 2**30:.1f} GiB of memory ({each}"
        f"{num_images} images x {ds.channels} x {ds.image_size}x{ds.image_size} x 4 bytes, "
        f"held until written) but this machine has {ram / 2**30:.1f} GiB; use num_images <= "
        f"{ram // (classes * per_image)}"
    )


def _peek_classes(path: Path) -> tuple[str, ...] | None:
    """The classes the initialization at `path` learned from (None: no such file)."""
    try:
        state = load(path)
        return tuple(state["classes"]["train"])
    except Exception:  # unreadable or older: the classes are simply not known
        return None


class _LastLosses:
    """Stands in for the fine-tune's TensorBoard writer: keeps each tag's last value."""

    def __init__(self) -> None:
        self.last: dict[str, float] = {}

    def add_scalar(self, tag: str, value: float, step: int) -> None:
        self.last[tag] = float(value)


def adapt_saved(
    saved: Saved,
    shots: Tensor,
    *,
    steps: int | None = None,
    lr: float | None = None,
    seed: int = 0,
    hardware_cfg: DictConfig | None = None,
    class_name: str | None = None,
) -> Saved:
    """A copy of `saved` adapted to `shots` [K, C, H, W] in [-1, 1] for `steps` rounds
    (default: the run's finetune.steps) with the run's fine-tune settings (optimizer, `lr`
    when given, batch size, augmentation, guard) and noise seed `seed` + 1, on the device of
    its weights. `hardware_cfg` (a `hardware` node) replaces the run's precision settings."""
    from metaaug.pipeline.adapt import finetune  # the train stage: imported only to adapt

    run = copy.deepcopy(saved.config)
    steps = run.finetune.steps if steps is None else int(steps)
    _refuse_too_few_shots(saved, shots.shape[0], steps, "the shots tensor")
    size, channels = run.dataset.image_size, run.dataset.channels
    if tuple(shots.shape[1:]) != (channels, size, size):
        raise UserError(
            f"shots of shape {tuple(shots.shape[1:])} do not fit the GAN, which makes "
            f"[{channels}, {size}, {size}] images; resize them to the run's dataset.image_size"
        )
    run.seed = int(seed)
    run.finetune.steps = steps
    run.finetune.eval_steps = []
    if lr is not None:
        run.finetune.optimizer.lr = float(lr)
    if hardware_cfg is not None:
        run.hardware = hardware_cfg
    device = next(saved.gan.parameters()).device
    writer = _LastLosses()
    how = build.finetune(run, build.precision(run, device, saved.gan), saved.class_loss)
    adapted = finetune(saved.gan, shots.to(device), how, writer, "adapt").gan  # type: ignore[arg-type]
    if steps:
        last = writer.last
        log.info("adapted %d steps to %d shots: loss_D=%.4g, loss_G=%.4g", steps,
                 shots.shape[0], last["adapt/loss_D"], last["adapt/loss_G"])  # fmt: skip
    adapted.eval()
    return replace(
        saved, gan=adapted, config=run, kind="adapted", class_name=class_name,
        shots=shots.detach().cpu(), shot_rows=None, steps=steps,
    )  # fmt: skip


def sample_saved(
    saved: Saved,
    n: int,
    *,
    seed: int = 0,
    shots: Tensor | None = None,
    batch_size: int | None = None,
) -> Tensor:
    """`n` images [n, C, H, W] in [-1, 1] on the CPU, drawn with noise seed `seed` + 2 (the
    seed `metaaug train` samples with) in batches of the run's generate.batch_size, so that a
    finetuned checkpoint at the run's seed gives the run's own synthetic images. An
    image-conditioned generator transforms `shots` (default: those it was adapted to)."""
    conditioning_shots = saved.shots if shots is None else shots
    if saved.conditioning.needs_shots and conditioning_shots is None:
        raise UserError(
            "this image-conditioned GAN transforms shots of the class into new images: give "
            "it shots (shots=DIR, or adapt it to them first)"
        )
    size = int(batch_size or saved.config.generate.batch_size)
    return sample_gan(saved.gan, int(n), hardware.generator(noise_seed(seed)), size,
                      conditioning_shots)  # fmt: skip


def read_shots(saved: Saved, folder: str, class_name: Any, steps: int) -> dict[str, Tensor]:
    """class -> shots of `shots=DIR` (`class_name`: one class's name for a folder of images),
    in the image format of the run behind `saved`; refused when a class has fewer than the
    GAN adapts on in `steps` fine-tune steps."""
    classes = read_classes(folder, "shots", **build.image_format(saved.config.dataset),
                           class_name=None if class_name is None else str(class_name))  # fmt: skip
    for name, images in classes.items():
        _refuse_too_few_shots(saved, images.shape[0], steps, f"shots class '{name}'")
    return classes


def _refuse_too_few_shots(saved: Saved, count: int, steps: int, what: str) -> None:
    """Refuse `count` shots (`what` names them) where the GAN adapts on more in `steps` steps."""
    need = saved.conditioning.min_shots(adapting=steps > 0)
    if count < need:
        raise UserError(
            f"{what} holds {count} image but gan={saved.config.gan.name} adapts on pairs of "
            f"shots; give at least {need} images, or steps=0 to sample the initialization as it is"
        )


def class_judge(saved: Saved, device: torch.device) -> ClassJudge:
    """`generate filter=true`'s judge for the images of `saved`: the protonet backbone of its
    run (the domain classifier of its meta-train classes, cached by the run) and the
    prototypes of those classes, read again from the run's dataset."""
    run = saved.config
    classes, split = build.classes_and_split(run)
    if saved.meta_train_classes is not None and set(saved.meta_train_classes) != set(split.train):
        raise UserError(
            f"filter=true compares the images with the meta-train classes of the run behind "
            f"checkpoint='{saved.path}', but its dataset.root='{run.dataset.root}' no longer "
            "gives the same classes; restore the run's dataset, or drop filter=true"
        )
    features, _ = evaluator.domain_features(run, classes, split, device)
    return ClassJudge(features, [classes[name] for name in split.train])
