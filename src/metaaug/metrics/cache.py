"""The domain classifier's disk cache: a trained network under a hash of everything that
determines it (the caller's key, the classes and their image counts, the image shape, the
training settings), so every run of a sweep over the same dataset and split scores its
samples with the same features, and a first run trains it once."""

from __future__ import annotations

import hashlib
import inspect
import json
import logging
import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import torch
from torch import Tensor

from metaaug.errors import BadValue
from metaaug.io.atomic import unwritable
from metaaug.io.checkpoint import save_atomic
from metaaug.metrics.domain import check_classes, train_domain_classifier
from metaaug.models.classifier import DomainClassifier

log = logging.getLogger("metaaug.metrics.domain")

# Bump when the network, the training recipe, the images it reads or the file layout change:
# old caches are ignored. 2: 16-bit images scaled by their depth (were clipped at 255), alpha
# composited on dataset.alpha_background (was dropped).
CACHE_VERSION = 2


def _plain(obj: object) -> object:
    """JSON-able copy of a config value (Mappings such as OmegaConf nodes, Paths, tuples)."""
    if isinstance(obj, Mapping):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    return str(obj)


def load_or_train_domain_classifier(
    classes: Mapping[str, Tensor],
    names: Sequence[str],
    *,
    cache_dir: str | Path,
    key: Mapping[str, object],
    **train_kwargs: object,
) -> tuple[DomainClassifier, dict]:
    """Load the domain classifier for (key, names, training settings, image shape) from
    `cache_dir`, or train it and save it there.

    `key` should name what the class tensors do not show: the dataset, its root, the split seed.
    The file name is a sha256 of a canonical JSON of `key`, the sorted `names`, their image
    counts, the image shape and the training settings (defaults filled in; `device` left out,
    so a classifier trained on a GPU serves CPU runs too). The file is written atomically and
    holds only tensors, strings and numbers, so `torch.load(path, weights_only=True)` reads it.

    Returns:
        (model in eval mode on `device`, info with `path`, `accuracy`, `cached`, `class_names`).
    """
    params = inspect.signature(train_domain_classifier).parameters.values()
    defaults = {p.name: p.default for p in params if p.kind is inspect.Parameter.KEYWORD_ONLY}
    unknown = sorted(set(train_kwargs) - set(defaults))
    if unknown:
        raise TypeError(f"unknown training arguments for the domain classifier: {unknown}")
    unique = check_classes(classes, names)
    settings = {**defaults, **train_kwargs}
    device = str(settings.pop("device"))
    payload = {
        "version": CACHE_VERSION,
        "key": _plain(key),
        "names": unique,
        "counts": [len(classes[name]) for name in unique],
        "shape": list(classes[unique[0]].shape[1:]),
        "train": _plain(settings),
    }
    key_json = json.dumps(payload, sort_keys=True, separators=(",", ":"))
    digest = hashlib.sha256(key_json.encode()).hexdigest()
    path = Path(cache_dir) / f"domain_classifier-{digest[:16]}.pt"

    if path.is_file():
        try:
            ckpt = torch.load(path, map_location="cpu", weights_only=True)
            if ckpt["key_json"] != key_json:
                raise ValueError("cache key mismatch")
            model = DomainClassifier(**ckpt["config"])
            model.load_state_dict(ckpt["state_dict"])
            model = model.to(device).eval()
            info = {"path": str(path), "accuracy": ckpt["accuracy"], "cached": True}
            return model, {**info, "class_names": list(ckpt["class_names"])}
        except Exception as err:  # a torn or foreign file must not stop a run: retrain
            log.warning("ignoring unreadable domain classifier cache %s (%s)", path, err)

    # a read-only cache serves the classifiers it holds; one it lacks is refused before the
    # training, not after it
    problem = unwritable(Path(cache_dir))
    if problem:
        raise BadValue(
            f"{{cache_dir}}='{cache_dir}' cannot keep the domain classifier this run must train: "
            f"{problem}; point {{cache_dir}} at a writable folder (by default it follows "
            "$METAAUG_CACHE)"
        )
    model, acc = train_domain_classifier(classes, unique, device=device, **settings)
    held = "no images held out" if math.isnan(acc) else f"held-out accuracy {acc:.3f}"
    log.info("trained domain classifier on %d classes: %s", len(unique), held)
    ckpt = {
        "format": "metaaug.domain_classifier",
        "key_json": key_json,
        "config": model.config(),
        "class_names": unique,
        "accuracy": acc,
        "state_dict": {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()},
    }
    # atomic (temporary file, fsync, rename): concurrent jobs of a multirun never see a
    # half-written file, and the last writer wins with identical content
    save_atomic(ckpt, path)
    return model, {"path": str(path), "accuracy": acc, "cached": False, "class_names": unique}
