"""Measure image sets as `metaaug evaluate` and the Python API do: the classes read from the
config's folders, the scorers of `metric` (the domain classifier `metaaug train` uses for the
same dataset, seed and split, or Inception), and every metric of every class.

Fidelity is the GAN-test of `metrics/fidelity.py` with the real folder as the reference: a
classifier of the dataset's meta-train classes and the even rows of each real class, its
ceiling measured on the odd rows.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from hydra.core.config_store import ConfigStore
from omegaconf import DictConfig
from torch import Tensor

from metaaug.config import build, evaluator, validate
from metaaug.config.groups import InceptionMetric
from metaaug.data.folders import read_classes
from metaaug.data.images import image_key
from metaaug.data.split import ClassSplit
from metaaug.data.target import Target
from metaaug.errors import UserError
from metaaug.io.synthetic import refuse_incomplete
from metaaug.metrics.evaluation import Extract, measure
from metaaug.metrics.fidelity import ClassFidelity, digest

log = logging.getLogger("metaaug.evaluate")

FOREGROUND_BRIGHT = "png, uint8, foreground bright"  # the format of metaaug's synthetic folders
# metric=inception exists for this command only (train and fewshot score with the domain
# classifier), so it is registered here rather than offered to them in conf/metric/
ConfigStore.instance().store(group="metric", name="inception", node=InceptionMetric)


@dataclass(frozen=True)
class ClassImages:
    """One class to evaluate: real (reference) images, generated ones, and the shots the
    generator adapted to (None when not given)."""

    name: str
    real: Tensor
    fake: Tensor
    shots: Tensor | None = None


def _read(cfg: DictConfig, key: str, invert: bool) -> dict[str, Tensor]:
    refuse_incomplete(Path(cfg[key]).expanduser())  # a synthetic set cut short
    return read_classes(
        str(cfg[key]), key, **(build.image_format(cfg.dataset) | {"invert": invert}),
        class_name=None if cfg.class_name is None else str(cfg.class_name),
    )  # fmt: skip


def _foreground_bright(folder: str) -> bool:
    """Whether `folder` is a metaaug synthetic folder, or one class folder of one (its PNGs are
    foreground bright, whatever the dataset's files are)."""
    path = Path(folder).expanduser()
    for manifest in (path / "manifest.json", path.parent / "manifest.json"):
        try:
            if json.loads(manifest.read_text()).get("format") == FOREGROUND_BRIGHT:
                return True
        except (OSError, ValueError, AttributeError):
            continue
    return False


def read_sets(cfg: DictConfig) -> list[ClassImages]:
    """The classes of `real`, `fake` and `shots`: one class each (paired whatever their
    names), or class folders matched by name (every fake class needs a real one)."""
    _refuse_same_folder(cfg)
    invert = bool(cfg.dataset.source.get("invert", False))  # the dataset's file polarity
    real = _read(cfg, "real", invert)
    fake = _read(cfg, "fake", invert and not _foreground_bright(cfg.fake))
    shots = _read(cfg, "shots", invert) if cfg.shots is not None else {}
    if len(real) == 1 and len(fake) == 1:
        name = str(cfg.class_name) if cfg.class_name is not None else next(iter(real))
        if len(shots) > 1:
            raise UserError(
                f"shots='{cfg.shots}' holds {len(shots)} class folders but real and fake hold "
                "one class; give the shots of that class (or class_name=NAME to pick it)"
            )
        one = next(iter(shots.values())) if shots else None
        sets = [ClassImages(name, next(iter(real.values())), next(iter(fake.values())), one)]
        return refuse_real_as_fake(_shots_apart(sets))
    missing = sorted(set(fake) - set(real))
    if missing:
        raise UserError(
            f"fake class folder(s) {missing} have no folder of the same name in real='"
            f"{cfg.real}' (it holds {sorted(real)}); give real images of every fake class"
        )
    stray = sorted(set(shots) - set(real))  # else memorization would go missing unsaid
    if stray:
        raise UserError(
            f"shots class folder(s) {stray} have no folder of the same name in real='"
            f"{cfg.real}' (it holds {sorted(real)}); give the shots in class folders named as "
            "real's (a folder of images is one class, named after the folder)"
        )
    unmatched = sorted(set(real) - set(fake))
    if unmatched:
        log.info("real classes without fake images (not evaluated): %s", ", ".join(unmatched))
    sets = [ClassImages(n, real[n], fake[n], shots.get(n)) for n in sorted(fake)]
    return refuse_real_as_fake(_shots_apart(sets))


def _refuse_same_folder(cfg: DictConfig) -> None:
    """Refuse `real` and `fake` naming one folder (whatever the spelling or link), before any
    image is read: the real images against themselves score a perfect generator."""
    real, fake = (Path(str(cfg[k])).expanduser().resolve() for k in ("real", "fake"))
    if real == fake:
        raise UserError(
            f"real= and fake= are the same folder '{real}' (the real images against themselves "
            "score a perfect generator); give the generated images as fake="
        )


def _shots_apart(sets: list[ClassImages]) -> list[ClassImages]:
    """`sets`, refused where `real` holds one of the shots: memorization and copies compare
    the fakes with new real drawings of the class, and a shot among them reads as infinity."""

    for s in sets:
        shots = {image_key(row) for row in s.shots} if s.shots is not None else set()
        among = {k for row in s.real if (k := image_key(row)) in shots} if shots else set()
        if among:
            raise UserError(
                f"real holds {len(among)} of the {len(s.shots)} shots of class '{s.name}'; take "
                "the shots out of real (memorization compares the fakes with new real images)"
            )
    return sets


def refuse_real_as_fake(sets: list[ClassImages]) -> list[ClassImages]:
    """`sets`, refused where every fake of a class is one of its real images (fake= a copy
    of real=, or of a part of it): every metric would report a perfect generator. Some copies
    among generated images are evaluated: memorization and copies measure them."""
    for s in sets:
        real = {image_key(row) for row in s.real}
        if len(s.fake) and all(image_key(row) in real for row in s.fake):
            raise UserError(
                f"each of the {len(s.fake)} fake images of class '{s.name}' is one of its real "
                "images (a copy of real scores a perfect generator); give the generated images "
                "as fake="
            )
    return sets


def _fidelity(
    cfg: DictConfig,
    classes: dict[str, Tensor],
    split: ClassSplit,
    sets: list[ClassImages],
    device: torch.device,
) -> ClassFidelity | None:
    """The fidelity classifier: meta-train classes whole and the even rows of each real class
    (trained once, then cached); None when no class has the 2 real images it needs."""
    targets = [Target(s.name, s.real[:0], s.real) for s in sets if len(s.real) >= 2]
    if not targets:
        return None
    key = {**evaluator.classifier_key(cfg), "purpose": "fidelity-evaluate",
           "real": digest(torch.cat([t.heldout for t in targets]))}  # fmt: skip
    return evaluator.fidelity_classifier(cfg, classes, split.train, targets, key, device, log)


def scorers(
    cfg: DictConfig, sets: list[ClassImages], device: torch.device
) -> tuple[Extract, dict[str, Any], ClassFidelity | None, str]:
    """The feature extractor of `metric`, its description, the fidelity classifier (None
    where there is none) and, then, why."""
    if cfg.metric.name == "inception":
        from metaaug.metrics.inception import InceptionFeatures, weights_file

        path = weights_file(cfg.metric.get("weights_path"), bool(cfg.metric.get("download")))
        extract = InceptionFeatures(path, device, cfg.metric.batch_size)
        reason = ("metric=inception reads no dataset of related classes to train a fidelity "
                  "classifier on; use metric=domain with dataset=<those classes>")  # fmt: skip
        return extract, {"name": "inception", "weights_path": str(path)}, None, reason
    classes, split = build.classes_and_split(cfg, [s.name for s in sets])  # as train drew it
    extract, info = evaluator.domain_features(cfg, classes, split, device)
    described = {"name": "domain", "classifier_path": str(info["path"]),
                 "classifier_accuracy": info["accuracy"],
                 "meta_train_classes": list(split.train)}  # fmt: skip
    fidelity = _fidelity(cfg, classes, split, sets, device)
    return extract, described, fidelity, "no real class holds the 2 images fidelity needs"


def _fidelity_of(
    fidelity: ClassFidelity | None, why: str, s: ClassImages
) -> tuple[dict, dict, Tensor | None]:
    """fidelity and ceiling of `s`, metric -> why it is nan, and which fakes are of the class."""
    if fidelity is None or len(s.real) < 2:
        reason = why if fidelity is None else (
            f"{s.name} has {len(s.real)} real image(s); fidelity needs at least 2 (one to "
            "train its classifier, one to measure the ceiling)")  # fmt: skip
        keys = ("fidelity", "ceiling", "novel_fidelity")
        return {"fidelity": math.nan, "ceiling": math.nan}, dict.fromkeys(keys, reason), None
    hits = fidelity.hits(s.fake, s.name)
    return fidelity.measure(s.fake, Target(s.name, s.real[:0], s.real), hits), {}, hits


def evaluate_sets(cfg: DictConfig, sets: list[ClassImages], device: torch.device) -> dict:
    """Every metric of every class of `sets`, their mean ± sd, and what scored them."""
    from metaaug.pipeline.measure import across

    extract, metric, fidelity, why = scorers(cfg, sets, device)
    m = cfg.metric
    per_class = []
    for s in sets:
        fid_results, fid_unavailable, hits = _fidelity_of(fidelity, why, s)
        results, unavailable = measure(
            extract, s.fake, s.real, s.shots, k=cfg.k,
            kid_subset_size=m.kid_subset_size, kid_subsets=m.kid_subsets,
            seed=cfg.seed, of_class=hits,
        )  # fmt: skip
        per_class.append({
            "class_name": s.name, "num_real": len(s.real), "num_fake": len(s.fake),
            "num_shots": 0 if s.shots is None else len(s.shots),
            "results": results | fid_results, "unavailable": unavailable | fid_unavailable,
        })  # fmt: skip
    mean, sd = across([{"all": c["results"]} for c in per_class])
    return {
        "metric": metric,
        "fidelity": {"classifier_path": fidelity.path} if fidelity else {"unavailable": why},
        "dataset": {"name": cfg.dataset.name, "image_size": cfg.dataset.image_size,
                    "channels": cfg.dataset.channels},
        "seed": cfg.seed,
        "k": cfg.k,
        "classes": per_class,
        "results": mean["all"],  # mean over classes (those where the metric is measured)
        "results_sd": sd["all"],  # sd over classes (0 for one)
    }  # fmt: skip


def check(cfg: DictConfig) -> None:
    """Every value's type and range, before any work (one line each)."""
    if cfg.metric.name == "domain":
        validate.check_config(cfg, "evaluate")  # with the domain classifier's memory estimate
    else:  # no classifier to train: the table alone
        validate.check_keys(cfg, "evaluate")


def evaluate_images(sets: list[ClassImages], overrides: list[str]) -> dict:
    """`evaluate_sets` for image tensors (the Python API): the `metaaug evaluate` config
    composed with `overrides` (dataset, metric, seed, ...), checked, on its device; what Hydra
    refuses in them is a UserError in one line, as on the command line."""
    from metaaug import hardware
    from metaaug.config.overrides import composed

    cfg = composed("evaluate", ["real=tensor", "fake=tensor", *overrides])
    check(cfg)
    sets = refuse_real_as_fake(_shots_apart(sets))
    return evaluate_sets(cfg, sets, hardware.resolve_device(cfg.hardware.device))
