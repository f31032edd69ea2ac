"""The config key behind each argument a library error names (`errors.BadValue`): the command
layer's half of a neutral error. A library function says `image_size=30 is not supported`;
`metaaug train` says `dataset.image_size=30 is not supported`.

One table per command, because one argument can come from different keys: `shots` is
`target.shots` to train, `fewshot.shots` to fewshot and a folder (`shots=DIR`) to generate
and evaluate, which use the common table.
"""

from __future__ import annotations

# arguments that mean the same key in every command (generate and evaluate: these alone)
COMMON: dict[str, str] = {
    "image_size": "dataset.image_size",
    "channels": "dataset.channels",
    "root": "dataset.root",
    "download": "dataset.download",
    "test_fraction": "dataset.test_fraction",
    "loss": "gan.loss",
    "norm": "gan.norm",
    "layers": "gan.layers",
    "blocks": "gan.blocks",
    "precision": "hardware.precision",
    "device": "hardware.device",
    "weights_path": "metric.weights_path",
    "cache_dir": "metric.cache_dir",
    "download_weights": "metric.download",
    "policy": "augment.transform.policy",
    "translation_ratio": "augment.transform.translation_ratio",
    "cutout_ratio": "augment.transform.cutout_ratio",
}

# train: the meta-training and target keys too
TRAIN: dict[str, str] = {
    **COMMON,
    "inner_optimizer": "meta_algo.inner_optimizer",
    "support": "meta_algo.support",
    "query": "meta_algo.query",
    "meta_batch_size": "meta_algo.meta_batch_size",
    "ways": "gan.ways",
    "shots": "target.shots",
    "class_name": "target.class_name",
    "classes": "target.classes",
    "path": "target.path",
}

# fewshot: episodes and workers are its own keys
FEWSHOT: dict[str, str] = {
    **COMMON,
    "ways": "fewshot.ways",
    "shots": "fewshot.shots",
    "queries": "fewshot.queries",
    "workers": "fewshot.workers",
}

BY_COMMAND: dict[str, dict[str, str]] = {"train": TRAIN, "fewshot": FEWSHOT}
