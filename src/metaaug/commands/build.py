"""Hydra config -> plain objects. The only place below the command modules that reads config."""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from hydra.errors import InstantiationException
from hydra.utils import instantiate as hydra_instantiate
from omegaconf import DictConfig, OmegaConf
from torch import Tensor

from metaaug.data.split import ClassSplit, split_classes
from metaaug.data.target import Target, select_target
from metaaug.errors import UserError
from metaaug.meta.base import MetaAlgorithm
from metaaug.meta.settings import Adversarial, Augment, OptimizerSpec
from metaaug.metrics.domain import DomainFeatures, load_or_train_domain_classifier
from metaaug.metrics.report import image_metrics
from metaaug.models.gan import GAN
from metaaug.precision import Precision
from metaaug.precision import resolve as resolve_precision

log = logging.getLogger(__name__)


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


@dataclass(frozen=True)
class Data:
    classes: dict[str, Tensor]
    split: ClassSplit
    target: Target


def config_hash(cfg: DictConfig) -> str:
    """A short fingerprint of the resolved config (recorded in manifests and checkpoints)."""
    text = OmegaConf.to_yaml(cfg, resolve=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def classes_and_split(cfg: DictConfig) -> tuple[dict[str, Tensor], ClassSplit]:
    """The dataset's classes and their seeded meta-train / meta-val / meta-test split."""
    ds = cfg.dataset
    if ds.get("root") is not None and not Path(str(ds.root)).expanduser().exists():
        raise UserError(
            f"dataset.root '{ds.root}' does not exist; point dataset.root at the folder "
            f"holding the {ds.name} data"
        )
    classes = instantiate(ds.source)
    return classes, split_classes(sorted(classes), ds.val_fraction, ds.test_fraction, cfg.seed)


def data(cfg: DictConfig) -> Data:
    ds = cfg.dataset
    classes, split = classes_and_split(cfg)
    target = select_target(
        classes,
        split,
        class_name=cfg.target.class_name,
        path=cfg.target.path,
        shots=int(cfg.target.shots),
        seed=cfg.seed,
        image_size=ds.image_size,
        channels=ds.channels,
        invert=bool(ds.source.get("invert", False)),
    )
    return Data(classes, split, target)


def gan(cfg: DictConfig, device: torch.device) -> GAN:
    return GAN(instantiate(cfg.gan.generator), instantiate(cfg.gan.discriminator)).to(device)


def adversarial(cfg: DictConfig) -> Adversarial:
    g = cfg.gan
    return Adversarial(
        g.loss, float(g.gp_weight), int(g.d_steps), int(g.g_steps), float(g.r1_weight)
    )


def optimizer(node: DictConfig) -> OptimizerSpec:
    return OptimizerSpec(str(node.name), float(node.lr), tuple(node.betas))


def precision(cfg: DictConfig, device: torch.device, gan: torch.nn.Module) -> Precision:
    """`hardware.precision` and `hardware.channels_last` for training `gan` on `device`
    ("auto" resolved: it depends on the device and on the GAN's size)."""
    hw = cfg.hardware
    weights = sum(p.numel() for p in gan.parameters())
    return resolve_precision(hw.precision, device, bool(hw.channels_last), weights)


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
        adversarial=adv, augment=augment(cfg), precision=prec, compile=bool(cfg.hardware.compile)
    )


def augment(cfg: DictConfig) -> Augment | None:
    return instantiate(cfg.augment.transform) if cfg.augment.transform is not None else None


def domain_features(
    cfg: DictConfig, classes: dict[str, Tensor], split: ClassSplit, device: torch.device
) -> tuple[DomainFeatures, dict[str, Any]]:
    """The domain classifier of this dataset's meta-train classes (trained once, then cached),
    as a feature extractor, and its info (path, held-out accuracy)."""
    m = cfg.metric
    if m.name != "domain":
        raise UserError(f"metric={m.name} is not available; use metric=domain")
    key = {
        "dataset": cfg.dataset.name,
        "root": str(cfg.dataset.get("root")),
        "image_size": cfg.dataset.image_size,
        "channels": cfg.dataset.channels,
        "seed": cfg.seed,
    }
    model, info = load_or_train_domain_classifier(
        classes,
        split.train,
        cache_dir=Path(str(m.cache_dir)).expanduser(),
        key=key,
        epochs=int(m.epochs),
        min_steps=int(m.min_steps),
        batch_size=int(m.batch_size),
        seed=int(cfg.seed),
        device=str(device),
    )
    how = "loaded from cache" if info["cached"] else "trained"
    log.info(
        "domain classifier %s (held-out accuracy %.3f): %s", how, info["accuracy"], info["path"]
    )
    return DomainFeatures(model), info


def evaluator(cfg: DictConfig, data: Data, device: torch.device):
    """(fake, heldout, shots) -> metrics, with the domain classifier of this dataset and split."""
    m = cfg.metric
    extract, info = domain_features(cfg, data.classes, data.split, device)

    def evaluate(fake: Tensor, heldout: Tensor, shots: Tensor) -> dict[str, float]:
        return image_metrics(
            extract,
            fake,
            heldout,
            shots,
            kid_subset_size=int(m.kid_subset_size),
            kid_subsets=int(m.kid_subsets),
            seed=int(cfg.seed),
        )

    return evaluate, info
