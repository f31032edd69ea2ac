"""The config -> what measures generated images: the domain classifier of a dataset, split and
seed (features for FID, KID, copies), the fidelity classifier of every class's reference rows,
and train's evaluator `(fake, target) -> metrics` over both. Each classifier is trained once,
then loaded from `metric.cache_dir` by a key of what defines it."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig
from torch import Tensor

from metaaug.data.images import alpha_level
from metaaug.data.split import ClassSplit
from metaaug.data.target import Data, Target
from metaaug.errors import UserError
from metaaug.gan.class_loss import ClassLoss, frozen, prototype_bank
from metaaug.metrics.cache import load_or_train_domain_classifier
from metaaug.metrics.domain import DomainFeatures
from metaaug.metrics.fidelity import ClassFidelity, digest
from metaaug.metrics.fidelity import training_classes as fidelity_classes
from metaaug.metrics.image_metrics import image_metrics
from metaaug.models.classifier import DomainClassifier

log = logging.getLogger(__name__)


def classifier_key(cfg: DictConfig) -> dict[str, Any]:
    """What the class tensors do not show about a classifier's training data."""
    key = {
        "dataset": cfg.dataset.name,
        "root": str(cfg.dataset.get("root")),
        "image_size": cfg.dataset.image_size,
        "channels": cfg.dataset.channels,
        "seed": cfg.seed,
    }
    # only when not white, so the caches of every earlier run keep their names
    background = alpha_level(cfg.dataset.get("alpha_background", "white"))
    return key if background == 255 else {**key, "alpha_background": background}


def _classifier(
    cfg: DictConfig,
    classes: dict[str, Tensor],
    names: Sequence[str],
    key: dict[str, Any],
    device: torch.device,
    **settings: Any,
) -> tuple[DomainClassifier, dict[str, Any]]:
    """A domain classifier of the classes `names`, trained with the `metric` node's settings
    (`settings` replace or add some) once, then loaded from `metric.cache_dir` by `key`."""
    m = cfg.metric
    defaults = {"epochs": m.epochs, "min_steps": m.min_steps, "batch_size": m.batch_size,
                "seed": cfg.seed, "device": str(device)}  # fmt: skip
    cache_dir = Path(str(m.cache_dir)).expanduser()
    return load_or_train_domain_classifier(
        classes, names, cache_dir=cache_dir, key=key, **(defaults | settings)
    )


def domain_features(
    cfg: DictConfig, classes: dict[str, Tensor], split: ClassSplit, device: torch.device
) -> tuple[DomainFeatures, dict[str, Any]]:
    """The domain classifier of this dataset's meta-train classes (trained once, then cached),
    as a feature extractor, and its info (path, held-out accuracy)."""
    model, info = _classifier(cfg, classes, split.train, classifier_key(cfg), device)
    how = "loaded from cache" if info["cached"] else "trained"
    log.info(
        "domain classifier %s (held-out accuracy %.3f): %s", how, info["accuracy"], info["path"]
    )
    return DomainFeatures(model), info


def class_fidelity(cfg: DictConfig, data: Data, device: torch.device) -> ClassFidelity:
    """The fidelity classifier of this dataset, split, shots and target (trained once, then
    cached): meta-train classes whole, the reference rows of every other class and target."""
    targets = [*data.references.values()]
    key = {**classifier_key(cfg), "purpose": "fidelity", "shots": cfg.target.shots}
    if cfg.target.path is not None:
        for target in data.targets:
            if target.class_name in data.classes:
                raise UserError(
                    f"target.path class '{target.class_name}' has the name of a class of "
                    f"dataset {cfg.dataset.name}, so two classes would share one name; rename "
                    "the folder or set another target.class_name"
                )
        targets += data.targets
        key["target_path"] = digest(torch.cat([t.heldout for t in data.targets]))
    return fidelity_classifier(cfg, data.classes, data.split.train, targets, key, device)


def fidelity_classifier(
    cfg: DictConfig,
    classes: dict[str, Tensor],
    train: tuple[str, ...],
    targets: list[Target],
    key: dict[str, Any],
    device: torch.device,
    logger: logging.Logger = log,
) -> ClassFidelity:
    """The fidelity classifier of the meta-train classes `train` whole and the reference rows
    of `targets` (trained once, then cached under `key`), logged as `logger` (the command's)."""
    learn = fidelity_classes(classes, train, targets)
    f = cfg.metric.fidelity
    model, info = _classifier(
        cfg,
        learn,
        list(learn),
        key,
        device,
        # its own step floor: many classes of few images need more steps than the epochs give
        # (Omniglot: 136 classes), 10 digit classes of 180 images do not (metric.min_steps is
        # the FID classifier's)
        min_steps=f.steps_per_class * len(learn),
        holdout_fraction=0.0,  # the ceiling is measured on the targets' own unseen rows
        noise=f.noise,
        width=f.width,
        feature_dim=f.feature_dim,
    )
    how = "loaded from cache" if info["cached"] else "trained"
    logger.info("fidelity classifier %s (%d classes): %s", how, len(learn), info["path"])
    return ClassFidelity(DomainFeatures(model), tuple(info["class_names"]), info["path"])


def class_loss(
    cfg: DictConfig, classes: dict[str, Tensor], split: ClassSplit, device: torch.device
) -> ClassLoss | None:
    """`gan.class_loss`'s term (None when its weight is 0): the features of a domain classifier
    of the meta-train classes with a seed of its own (cached like the others), and the
    prototypes of those classes."""
    weight = float(cfg.gan.get("class_loss", 0.0))
    if weight == 0:
        return None
    key = {**classifier_key(cfg), "purpose": "class_loss"}
    # not the FID features' nor the protonet backbone's network: another initialization
    model, info = _classifier(cfg, classes, split.train, key, device, seed=cfg.seed + 1)
    model = frozen(model)
    how = "loaded from cache" if info["cached"] else "trained"
    log.info("class term (gan.class_loss=%g): its classifier %s (held-out accuracy %.3f): %s",
             weight, how, info["accuracy"], info["path"])  # fmt: skip
    return ClassLoss(model, prototype_bank(model, classes, split.train), tuple(split.train),
                     weight)  # fmt: skip


def evaluator(
    cfg: DictConfig, data: Data, device: torch.device
) -> tuple[Callable[[Tensor, Target], dict[str, float]], dict[str, Any]]:
    """(fake, target) -> metrics: the domain metrics against the target's held-out images, the
    class fidelity with its ceiling, and novel_fidelity; and the domain classifier's info."""
    m = cfg.metric
    extract, info = domain_features(cfg, data.classes, data.split, device)
    fidelity = class_fidelity(cfg, data, device)

    def evaluate(fake: Tensor, target: Target) -> dict[str, float]:
        hits = fidelity.hits(fake, target.class_name)  # fidelity, and novel_fidelity's half
        metrics = image_metrics(
            extract,
            fake,
            target.heldout,
            target.shots,
            kid_subset_size=m.kid_subset_size,
            kid_subsets=m.kid_subsets,
            seed=cfg.seed,
            of_class=hits,
        )
        return fidelity.measure(fake, target, hits) | metrics

    return evaluate, {**info, "fidelity": fidelity}
