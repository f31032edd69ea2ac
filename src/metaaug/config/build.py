"""The config -> plain objects: the device, the data and split, the GAN, its loss, optimizers,
augmentation and precision, the fine-tune's settings and the guard (the set-up layer's core)."""

from __future__ import annotations

import copy
import hashlib
import sys
from collections import Counter
from collections.abc import Sequence
from typing import Any

import torch
from hydra.errors import InstantiationException
from hydra.utils import instantiate as hydra_instantiate
from omegaconf import DictConfig, ListConfig, OmegaConf
from torch import Tensor

from metaaug import hardware
from metaaug.config import validate
from metaaug.data.images import image_key
from metaaug.data.split import ClassSplit, split_classes
from metaaug.data.target import Data, Target, class_target, select_targets
from metaaug.errors import UserError, nearest
from metaaug.gan.class_loss import ClassLoss
from metaaug.io.synthetic import class_folders
from metaaug.meta.base import MetaAlgorithm
from metaaug.meta.settings import Adversarial, Augment, OptimizerSpec
from metaaug.models.gan import GAN
from metaaug.pipeline.settings import Finetune
from metaaug.precision import Precision
from metaaug.precision import resolve as resolve_precision
from metaaug.training.guard import Guard


def instantiate(node: Any, **kwargs: Any) -> Any:
    """hydra.utils.instantiate, letting our UserError through instead of Hydra's wrapper."""
    try:
        return hydra_instantiate(node, **kwargs)
    except InstantiationException as err:
        cause = err.__cause__
        while cause is not None and not isinstance(cause, UserError):
            cause = cause.__cause__
        if cause is not None:
            raise cause from None
        raise


def config_hash(cfg: DictConfig) -> str:
    """A short fingerprint of the resolved config (recorded in manifests and checkpoints)."""
    text = OmegaConf.to_yaml(cfg, resolve=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def named_targets(cfg: DictConfig, classes: dict[str, Tensor]) -> list[str]:
    """The dataset classes the user names as targets (`target.class_name`, or the list of
    `target.classes`; a number on the command line is a class name too), checked to exist.
    A `target.path` names no dataset class."""
    target = cfg.get("target") or {}
    if target.get("path") is not None:
        return []
    many = target.get("classes")
    if isinstance(many, ListConfig):
        key, names = "target.classes", [str(name) for name in many]
    elif target.get("class_name") is not None:
        key, names = "target.class_name", [str(target.class_name)]
    else:
        return []
    for name in names:
        if name not in classes:
            raise UserError(
                f"{key} '{name}' is not a class of dataset {cfg.dataset.name}; "
                f"nearest names: {', '.join(nearest(name, classes.keys(), n=3))}"
            )
    return names


def split_by(ds: DictConfig) -> str:
    """`dataset.split_by` (class when absent: the configs of runs written before it existed)."""
    return str(ds.get("split_by", "class"))


def classes_and_split(
    cfg: DictConfig, held: Sequence[str] = ()
) -> tuple[dict[str, Tensor], ClassSplit]:
    """The dataset's classes and their seeded meta-train / meta-val / meta-test split; the
    classes named as targets, and those of `held` that are dataset classes (the classes
    `evaluate` measures), are held out (meta-test) before the split is drawn."""
    ds = cfg.dataset
    validate.check_dataset_root(cfg)
    classes = instantiate(ds.source)
    held_out = [*named_targets(cfg, classes), *(name for name in held if name in classes)]
    split = split_classes(sorted(classes), ds.val_fraction, ds.test_fraction, cfg.seed,
                          held_out, by=split_by(ds))  # fmt: skip
    return classes, split


def image_format(ds: DictConfig) -> dict[str, Any]:
    """How the dataset node `ds` reads images, as `read_classes` and `select_targets` take it
    (a run config written before `alpha_background` existed: white)."""
    return {"image_size": ds.image_size, "channels": ds.channels,
            "invert": bool(ds.source.get("invert", False)),
            "alpha_background": ds.get("alpha_background", "white")}  # fmt: skip


def data(cfg: DictConfig) -> Data:
    classes, split = classes_and_split(cfg)
    many = cfg.target.get("classes")
    targets = select_targets(
        classes,
        split,
        class_name=cfg.target.class_name,
        many=list(many) if isinstance(many, ListConfig) else many,
        path=cfg.target.path,
        shots=cfg.target.shots,
        seed=cfg.seed,
        **image_format(cfg.dataset),
    )
    if cfg.target.path is not None:
        _check_path_targets(targets, classes)
    shots = cfg.target.shots
    references = {
        # a small class keeps at least one held-out image to measure
        name: class_target(name, classes[name], min(shots, len(classes[name]) - 1), cfg.seed)
        for name in split.val + split.test
    }
    return Data(classes, split, targets, references)


def _check_path_targets(targets: list[Target], classes: dict[str, Tensor]) -> None:
    """target.path's classes, before any work: two whose outputs would share one folder
    (checkpoints/finetuned/<folder>.pt, samples/, synthetic/), or one holding images of a
    dataset class under another name (meta-training may learn it: a leak)."""
    class_folders([t.class_name for t in targets])
    seen = {image_key(image): name for name, images in classes.items() for image in images}
    for t in targets:
        keys = (image_key(image) for image in (*t.shots, *t.heldout))
        copied = Counter(seen[k] for k in keys if k in seen)
        if copied:
            (name, count), *_ = copied.most_common()
            raise UserError(
                f"target.path class '{t.class_name}' holds {count} image(s) of dataset class "
                f"'{name}', which the run may meta-train on; take the copies out of target.path "
                "(a dataset class is a target by target.class_name)"
            )


def device(cfg: DictConfig) -> torch.device:
    """`hardware.*` applied to this process (threads, determinism, seeds, memory reuse): the
    device every command computes on."""
    hw = cfg.hardware
    return hardware.setup(hw.device, hw.threads, hw.deterministic, cfg.seed,
                          reuse_memory=hw.reuse_memory)  # fmt: skip


def progress(cfg: DictConfig) -> bool:
    """Whether to draw progress bars (`progress`: auto = only on a terminal)."""
    return sys.stderr.isatty() if cfg.progress == "auto" else cfg.progress


def gan(cfg: DictConfig, device: torch.device) -> GAN:
    return GAN(instantiate(cfg.gan.generator), instantiate(cfg.gan.discriminator)).to(device)


def adversarial(cfg: DictConfig, class_loss: ClassLoss | None = None) -> Adversarial:
    """The run's losses and penalties; `class_loss` is `gan.class_loss`'s term, built with the
    data (`config.evaluator.class_loss`)."""
    g = cfg.gan
    return Adversarial(
        g.loss, g.gp_weight, g.d_steps, g.g_steps, float(g.r1_weight),
        float(g.get("diversity", 0.0)), class_loss,  # a run saved before the key: off
    )  # fmt: skip


def guard(cfg: DictConfig) -> Guard:
    g = cfg.guard
    return Guard(str(g.on_divergence), g.lr_factor, g.max_rollbacks)


# the learning rates of a meta_algo node that a rollback lowers
META_LRS = ("meta_lr", "inner_optimizer.lr", "optimizer.lr")


def lowered(cfg: DictConfig, prefix: str, factor: float) -> DictConfig:
    """A copy of the whole config `cfg` with the learning rates `META_LRS` of the meta_algo
    node at `prefix` (those present) multiplied by `factor`; interpolations of them (the
    algorithm's) follow. A rollback's retry builds its algorithm from the copy."""
    out = copy.deepcopy(cfg)
    for key in META_LRS:
        path = f"{prefix}.{key}" if prefix else key
        value = OmegaConf.select(out, path)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            OmegaConf.update(out, path, float(value) * factor)
    return out


def finetune(cfg: DictConfig, prec: Precision, class_loss: ClassLoss | None = None) -> Finetune:
    """How each arm adapts to a target's shots: the `finetune` node with the run's loss (and
    class term), augmentation, guard, seed and precision."""
    f = cfg.finetune
    return Finetune(
        steps=f.steps, optimizer=optimizer(f.optimizer),
        adversarial=adversarial(cfg, class_loss),
        batch_size=f.batch_size, augment=augment(cfg),
        eval_steps=frozenset(int(s) for s in f.eval_steps or ()), seed=cfg.seed,
        guard=guard(cfg), precision=prec,
    )  # fmt: skip


def optimizer(node: DictConfig) -> OptimizerSpec:
    return OptimizerSpec(str(node.name), node.lr, tuple(node.betas))


def precision(cfg: DictConfig, device: torch.device, gan: torch.nn.Module) -> Precision:
    """`hardware.precision` and `hardware.channels_last` for training `gan` on `device`
    ("auto" resolved: it depends on the device and on the GAN's size)."""
    hw = cfg.hardware
    weights = sum(p.numel() for p in gan.parameters())
    return resolve_precision(hw.precision, device, hw.channels_last, weights)


def meta_algorithm(
    meta: DictConfig, cfg: DictConfig, adv: Adversarial, prec: Precision, **overrides: Any
) -> MetaAlgorithm:
    """The meta-algorithm of the meta_algo node `meta`, given the run's adversarial settings
    and precision.

    Built as a partial and then called, so that the objects passed in stay plain Python objects
    (Hydra would turn a dataclass argument into a config node).
    """
    factory = instantiate(meta.algorithm, _partial_=True, **overrides)
    return factory(
        adversarial=adv, augment=augment(cfg), precision=prec, compile=cfg.hardware.compile
    )


def augment(cfg: DictConfig) -> Augment | None:
    return instantiate(cfg.augment.transform) if cfg.augment.transform is not None else None
