"""Every config value checked before any work: the ranges and choices of the command's typed
schema (`metaaug.config.schema`: each field's `Rule`), and what no single field can say (keys
that must agree, the image sizes the GAN builds, a memory estimate, the data folders).

A bad value stops the command with one line naming the key, the value and what is accepted
(`UserError`: `metaaug: error: ...`, exit 2). Types are OmegaConf's to hold as Hydra composes
(`metaaug.config.overrides` words its refusals the same way); a key typed `Any` (`progress`,
`hardware.precision`) is checked here, where OmegaConf's spellings of a boolean (`off`, `yes`)
are written back into the config as false and true.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from metaaug.config import keys
from metaaug.config.groups import MetaAlgo
from metaaug.config.rules import Rule, group_table, optional, table_of
from metaaug.config.schema import COMMANDS
from metaaug.errors import BadValue, UserError
from metaaug.hardware import usable_cpus
from metaaug.models.figr import figr_side
from metaaug.models.gan import spatial_plan

_ABSENT = object()
ROOT_EXAMPLES = {
    "imagefolder": "a folder of <class>/*.png, e.g. dataset.root=data/my_classes",
    "omniglot": "e.g. dataset.root=../shared/data/omniglot",
}


def _select(cfg: DictConfig, key: str) -> Any:
    try:
        return OmegaConf.select(cfg, key, default=_ABSENT, throw_on_missing=True)
    except OmegaConfBaseException as err:  # an interpolation that does not resolve
        reason = str(err).splitlines()[0]
        raise UserError(f"{key} cannot be resolved ({reason}); fix or drop that value") from None


def _check_rules(cfg: DictConfig, rules: Iterable[tuple[str, Rule]]) -> None:
    for key, rule in rules:
        value = _select(cfg, key)
        if value is _ABSENT:
            if rule.optional:
                continue
            raise UserError(f"{key} is missing from the config; add it with +{key}=<value>")
        if rule.convert is not None and (converted := rule.convert(value)) is not value:
            OmegaConf.update(cfg, key, converted, merge=False)
            value = converted
        if not rule.ok(value):
            raise UserError(rule.message(key, value))


def _missing_keys(node: DictConfig | ListConfig, prefix: str = "") -> Iterator[str]:
    """The paths of mandatory values (`???`) left unset; interpolations are not resolved
    (OmegaConf.missing_keys resolves them, and fails on one that refers to a `???`)."""
    keys = range(len(node)) if isinstance(node, ListConfig) else node.keys()
    for key in keys:
        path = f"{prefix}{key}"
        if OmegaConf.is_missing(node, key):
            yield path
        elif not OmegaConf.is_interpolation(node, key) and OmegaConf.is_config(node[key]):
            yield from _missing_keys(node[key], f"{path}.")


def _missing(cfg: DictConfig) -> None:
    """A mandatory value (`???`) left unset: the first one, with an example."""
    key = next(_missing_keys(cfg), None)
    if key is None:
        return
    if key == "dataset.root":
        name = str(cfg.dataset.get("name", ""))
        example = ROOT_EXAMPLES.get(name, "e.g. dataset.root=path/to/data")
        raise UserError(f"dataset.root is not set; dataset={name} needs it: {example}")
    raise UserError(f"{key} is not set (???); set it on the command line: {key}=<value>")


def _check_meta_algo(cfg: DictConfig, prefix: str) -> None:
    """A meta node: `iterations`, and with an algorithm (not scratch) every key it has."""
    node = OmegaConf.select(cfg, prefix)
    rules = group_table(MetaAlgo)
    _check_rules(cfg, [(f"{prefix}.iterations", rules.pop("iterations"))])
    if node.get("algorithm") is None:
        return
    _check_rules(cfg, [(f"{prefix}.{k}", optional(r)) for k, r in rules.items()])
    target = str(node.algorithm.get("_target_", ""))
    if target.endswith(("MAML", "MetaSGD")) and node.iterations > 0 and node.query < 1:
        raise UserError(
            f"{prefix}.query={node.query}: {node.name}'s meta-loss needs query images; set "
            f"{prefix}.query to at least 1 (e.g. 4)"
        )


def _check_cross(cfg: DictConfig, command: str) -> None:
    """What involves two keys."""
    ds = cfg.dataset
    if ds.val_fraction + ds.test_fraction >= 1:
        raise UserError(
            f"dataset.val_fraction + dataset.test_fraction = {ds.val_fraction} + "
            f"{ds.test_fraction} leaves no meta-train class; make them sum to less than 1"
        )
    if cfg.metric.epochs == 0 and cfg.metric.min_steps == 0:
        raise UserError("metric.epochs=0 and metric.min_steps=0 train no classifier; set "
                        "metric.epochs to at least 1")  # fmt: skip
    if command != "train":
        return
    late = [s for s in cfg.finetune.eval_steps or () if s > cfg.finetune.steps]
    if late:
        raise UserError(
            f"finetune.eval_steps lists {late} beyond finetune.steps={cfg.finetune.steps}; "
            f"list steps in 1..{cfg.finetune.steps}"
        )


def _check_gan_size(cfg: DictConfig) -> None:
    """The image sizes the GAN pair builds (the models' own checks, before any data)."""
    size = cfg.dataset.image_size
    module = str(OmegaConf.select(cfg, "gan.generator._target_", default="")).rpartition(".")[0]
    if module in (
        "metaaug.models.gan",
        "metaaug.models.conditional",
        "metaaug.models.dagan",
        "metaaug.models.fusion",
    ):
        spatial_plan(size)
    elif module in ("metaaug.models.figr", "metaaug.models.resnet"):
        figr_side(size, cfg.gan.blocks, "FIGR" if module.endswith("figr") else "ResNet")


# Images a dataset loads at least (omniglot: its smallest layout, images_background_small1);
# imagefolder's count would need its files counted, so it is not estimated.
DATASET_IMAGES = {"digits": 1_797, "mnist": 70_000, "fashion_mnist": 70_000, "omniglot": 2_720}
DOMAIN_WIDTH = 32  # the FID classifier's first conv channels (train_domain_classifier's default)


def ram_bytes() -> int | None:
    """The machine's physical memory; None where the OS does not say."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def _on_cpu(cfg: DictConfig) -> bool:
    device = cfg.hardware.device
    if device == "auto":
        import torch

        return not torch.cuda.is_available()
    return device == "cpu"


def memory_estimate(cfg: DictConfig, command: str) -> tuple[int, str]:
    """A lower bound of the bytes a run needs, and how it was counted: the dataset tensor
    (float32, held twice: the classes and the metric classifier's training copy), on the CPU
    one training batch of the metric classifier's first conv block (output and the copies
    kept for backward, ~2x), and for train the main arm's `generate.num_images` images of one
    target (float32). The GAN and its meta-training are not counted."""
    parts = _memory_parts(cfg, command)
    return sum(p[0] for p in parts), "; ".join(p[1] for p in parts)


def _memory_parts(cfg: DictConfig, command: str) -> list[tuple[int, str, str, str]]:
    """(bytes, how they were counted, the key behind them, its fix) of each counted part."""
    ds, m = cfg.dataset, cfg.metric
    size, channels = ds.image_size, ds.channels
    side = f"{channels} x {size}x{size}"
    smaller = (f"dataset.image_size={size}", "use a smaller dataset.image_size (e.g. 32 or 64)")
    parts = []
    n = DATASET_IMAGES.get(str(ds.name), 0)
    if n:
        how = f"{n} {ds.name} images x {side} x 4 bytes, twice"
        parts.append((2 * n * channels * size**2 * 4, how, *smaller))
    if _on_cpu(cfg):
        width = DOMAIN_WIDTH if command == "fewshot" else max(DOMAIN_WIDTH, m.fidelity.width)
        how = f"a metric batch of {m.batch_size} x 2 x {width} x {size}x{size} x 4 bytes"
        parts.append((m.batch_size * 2 * width * size**2 * 4, how, *smaller))
    if command == "train":
        images = cfg.generate.num_images
        how = f"{images} generated images x {side} x 4 bytes"
        fewer = (f"generate.num_images={images}", "ask for fewer images per class")
        parts.append((images * channels * size**2 * 4, how, *fewer))
    return parts


def _check_memory(cfg: DictConfig, command: str) -> None:
    ram = ram_bytes()
    need, how = memory_estimate(cfg, command)
    if ram is None or need <= ram:
        return
    _, _, key, fix = max(_memory_parts(cfg, command), key=lambda part: part[0])
    raise UserError(
        f"{key} needs at least {need / 2**30:.1f} GiB of memory ({how}) but this machine has "
        f"{ram / 2**30:.1f} GiB; {fix}"
    )


def _check_threads(cfg: DictConfig) -> None:
    threads, cpus = cfg.hardware.get("threads"), usable_cpus()
    if threads is not None and threads > cpus:
        raise UserError(
            f"hardware.threads={threads} but this process may use {cpus} CPU core(s); use "
            f"1..{cpus} or null (torch's default): more threads than cores wait for each other"
        )


@contextlib.contextmanager
def _naming_keys(command: str) -> Iterator[None]:
    """The library checks called here (image sizes, losses) name their arguments; a refusal
    from here names the key, whoever called it (the command, or a test)."""
    try:
        yield
    except BadValue as err:
        raise UserError(err.keyed(keys.BY_COMMAND.get(command, keys.COMMON))) from None


def check_keys(cfg: DictConfig, command: str) -> None:
    """The mandatory values and the table of `command` alone (`check_config`'s start): for
    commands that split no dataset and train nothing (generate, evaluate). Reads no file."""
    _missing(cfg)
    with _naming_keys(command):
        _check_rules(cfg, table_of(COMMANDS[command]).items())


def check_config(cfg: DictConfig, command: str, machine: bool = True) -> None:
    """The config of `command` ("train" or "fewshot") alone: every value in the table, the
    pairs of keys that must agree, the image size, and with `machine` what this machine holds
    (memory, cores: a sweep's launcher may run its jobs on others). Reads no file."""
    check_keys(cfg, command)
    with _naming_keys(command):
        if command == "train":
            _check_meta_algo(cfg, "meta_algo")
            for name in cfg.get("baselines") or {}:
                _check_meta_algo(cfg, f"baselines.{name}")
        _check_cross(cfg, command)
        if command == "train":
            _check_gan_size(cfg)
        if machine:
            _check_memory(cfg, command)
            _check_threads(cfg)


def _check_folder(key: str, value: str | None, what: str) -> None:
    if value is None:
        return
    path = Path(value).expanduser()
    if not path.exists():
        raise UserError(f"{key} '{value}' does not exist; point {key} at {what}")
    if not path.is_dir():
        raise UserError(f"{key} '{value}' is a file, not a folder; point {key} at {what}")
    try:
        with os.scandir(path) as entries:
            next(entries, None)
    except OSError as err:  # PermissionError above all
        reason = err.strerror or type(err).__name__
        raise UserError(
            f"{key} '{value}' cannot be read ({reason}); fix its permissions or point {key} "
            f"at {what}"
        ) from None


def check_dataset_root(cfg: DictConfig) -> None:
    """`dataset.root`, where one is set, exists, is a folder and can be listed."""
    _check_folder("dataset.root", cfg.dataset.get("root"), f"the folder holding the "
                  f"{cfg.dataset.name} data")  # fmt: skip


def check_paths(cfg: DictConfig, command: str) -> None:
    """The folders the config names exist, are folders and can be listed."""
    check_dataset_root(cfg)
    if command == "train":
        _check_folder("target.path", cfg.target.get("path"), "a folder of images or of class "
                      "folders")  # fmt: skip


def check(cfg: DictConfig, command: str) -> None:
    """Everything `command` can check before any work: the config, then the folders it names."""
    check_config(cfg, command)
    check_paths(cfg, command)
