"""Every config value checked before any work: a table of keys (path -> type and range or
choices) for each command (train, fewshot, generate, evaluate), and what a table cannot say
(the image sizes the GAN builds, a memory estimate, the data folders).

A bad value stops the command with one line naming the key, the value and what is accepted
(`UserError`: `metaaug: error: ...`, exit 2). The configs are plain YAML, so a command-line
value arrives as YAML reads it: `seed=1e20` is a float, `meta_algo.iterations=abc` and
`progress=off` are strings. Nothing is converted: a value not of the declared type is refused.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from metaaug.data.images import alpha_level
from metaaug.errors import UserError
from metaaug.gan.losses import LOSSES
from metaaug.metrics.names import OBJECTIVES
from metaaug.models.classifier import MIN_IMAGE_SIZE
from metaaug.models.figr import figr_side
from metaaug.models.gan import spatial_plan
from metaaug.precision import PRECISIONS

# torch.manual_seed takes 64 bits; fewshot seeds its episodes with seed * 1_000_003 * 101 + i,
# which stays inside them for seeds below 2**32 (numpy's legacy seeding range, too).
MAX_SEED = 2**32 - 1
OPTIMIZERS = ("sgd", "adam")


@dataclass(frozen=True)
class Rule:
    """What a key accepts: `accepted` says it in words, `ok` tests a value."""

    accepted: str
    ok: Callable[[Any], bool]
    choice: bool = False  # a name from a list: "... is not known; use ..." ("...: use ...")
    optional: bool = False  # only some options of a group have the key

    def message(self, key: str, value: Any) -> str:
        verb = " is not known;" if self.choice else ":"
        return f"{key}={value!r}{verb} use {self.accepted}"


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return (_is_int(v) or isinstance(v, float)) and math.isfinite(v)


def _is_list(v: Any) -> bool:
    return isinstance(v, ListConfig | list)


def _nullable(rule: Rule, null: bool) -> Rule:
    if not null:
        return rule
    return Rule(f"{rule.accepted} or null", lambda v: v is None or rule.ok(v), rule.choice)


def integer(lo: int, hi: int | None = None, note: str = "", null: bool = False) -> Rule:
    text = f"an integer >= {lo}" if hi is None else f"an integer in {lo}..{hi}"
    rule = _nullable(Rule(text, lambda v: _is_int(v) and lo <= v and (hi is None or v <= hi)), null)
    return Rule(f"{rule.accepted} ({note})", rule.ok) if note else rule


def number(
    lo: float, hi: float | None = None, lo_open: bool = False, hi_open: bool = False
) -> Rule:
    """A finite number from `lo` (excluded when `lo_open`) to `hi`."""
    if hi is None:
        text = f"a number {'>' if lo_open else '>='} {lo}"
    else:
        text = f"a number in {'(' if lo_open else '['}{lo}, {hi}{')' if hi_open else ']'}"

    def ok(v: Any) -> bool:
        above = _is_number(v) and (v > lo if lo_open else v >= lo)
        return above and (hi is None or (v < hi if hi_open else v <= hi))

    return Rule(text, ok)


def one_of(*choices: Any, null: bool = False) -> Rule:
    # by type too: 1 == True in Python, but progress=1 is not progress=true
    names = [str(c).lower() if isinstance(c, bool) else str(c) for c in choices]
    text = names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"
    rule = Rule(text, lambda v: any(type(v) is type(c) and v == c for c in choices), True)
    return _nullable(rule, null)


def optional(rule: Rule) -> Rule:
    return Rule(rule.accepted, rule.ok, rule.choice, optional=True)


BOOLEAN = Rule("true or false", lambda v: isinstance(v, bool))
TEXT = Rule("a string", lambda v: isinstance(v, str))
PATH = Rule("a path or null", lambda v: v is None or isinstance(v, str))
NAME = Rule("a name or null", lambda v: v is None or isinstance(v, str))
LR = number(0, lo_open=True)
BETAS = Rule(
    "a list of two numbers in [0, 1), e.g. [0.5, 0.999]",
    lambda v: _is_list(v) and len(v) == 2 and all(_is_number(b) and 0 <= b < 1 for b in v),
)
STEPS = Rule(
    "a list of integers >= 1 or null",
    lambda v: v is None or (_is_list(v) and all(_is_int(s) and s >= 1 for s in v)),
)
NAMES = Rule("a list of names, e.g. [a,b]", lambda v: _is_list(v))


def _alpha_ok(v: Any) -> bool:
    try:
        alpha_level(v)
    except UserError:
        return False
    return True


COMMON: dict[str, Rule] = {
    "seed": integer(0, MAX_SEED),
    "progress": one_of(True, False, "auto"),  # yes/no/on/off are strings here, and refused
    "dataset.name": TEXT,
    "dataset.root": PATH,
    "dataset.download": optional(BOOLEAN),
    "dataset.image_size": integer(MIN_IMAGE_SIZE),
    "dataset.channels": one_of(1, 3),
    "dataset.alpha_background": optional(Rule("white, black or a gray level 0-255", _alpha_ok)),
    "dataset.val_fraction": number(0, 1, hi_open=True),
    "dataset.test_fraction": number(0, 1, hi_open=True),
    "hardware.device": Rule(
        "auto, cpu, cuda or cuda:N",
        lambda v: isinstance(v, str) and re.fullmatch(r"auto|cpu|cuda(:\d+)?", v) is not None,
        choice=True,
    ),
    "hardware.threads": integer(1, note="null = torch's default", null=True),
    "hardware.deterministic": BOOLEAN,
    # `precision: 32` is the integer 32 in YAML
    "hardware.precision": Rule(
        ", ".join(PRECISIONS[:-1]) + f" or {PRECISIONS[-1]}",
        lambda v: isinstance(v, int | str) and not isinstance(v, bool) and str(v) in PRECISIONS,
        choice=True,
    ),
    "hardware.channels_last": BOOLEAN,
    "hardware.compile": BOOLEAN,
    "hardware.reuse_memory": BOOLEAN,
    "hardware.distributed": optional(BOOLEAN),  # absent from a preset of one's own: false
    "metric.name": one_of("domain"),
    "metric.cache_dir": TEXT,
    "metric.epochs": integer(0),
    "metric.min_steps": integer(0),
    "metric.batch_size": integer(1),
    "metric.kid_subset_size": integer(2),
    "metric.kid_subsets": integer(1),
    "metric.fidelity.noise": number(0),
    "metric.fidelity.width": integer(1),
    "metric.fidelity.feature_dim": integer(1),
    "metric.fidelity.steps_per_class": integer(0),
}

# augment/classic.yaml and augment/diffaug.yaml (under augment or, in fewshot, classic_augment)
AUGMENT: dict[str, Rule] = {
    "rotate": number(0), "translate": number(0, 1), "scale": number(0, 1, hi_open=True),
    "hflip": number(0, 1), "noise": number(0), "policy": TEXT,
    "translation_ratio": number(0, 1), "cutout_ratio": number(0, 1), "brightness": number(0),
}  # fmt: skip

# A meta_algo node (meta_algo, baselines.<arm>); without an algorithm (scratch) it trains
# nothing and only `iterations` is read.
META_ALGO: dict[str, Rule] = {"iterations": integer(0, note="0 = no meta-training")}
TRAINING_META_ALGO: dict[str, Rule] = {
    "meta_batch_size": integer(1),
    "inner_steps": integer(1),
    "support": integer(1),
    "query": integer(0),
    "ways": optional(integer(1)),
    "first_order": optional(BOOLEAN),
    "vectorize": optional(BOOLEAN),
    "inner_optimizer.name": optional(one_of(*OPTIMIZERS)),
    "inner_optimizer.lr": optional(LR),
    "inner_optimizer.betas": optional(BETAS),
    "meta_optimizer": optional(one_of(*OPTIMIZERS)),
    "meta_lr": optional(LR),
    "meta_betas": optional(BETAS),
    "optimizer.name": optional(one_of(*OPTIMIZERS)),  # pretrain
    "optimizer.lr": optional(LR),
    "optimizer.betas": optional(BETAS),
}

TRAIN: dict[str, Rule] = {
    **COMMON,
    "target.path": PATH,
    "target.shots": integer(1),
    "finetune.steps": integer(0, note="0 = no fine-tune"),
    "finetune.batch_size": integer(1, note="null = all shots", null=True),
    "finetune.eval_steps": STEPS,
    "finetune.optimizer.name": one_of(*OPTIMIZERS),
    "finetune.optimizer.lr": LR,
    "finetune.optimizer.betas": BETAS,
    "generate.num_images": integer(1),
    "generate.batch_size": integer(1),
    "generate.out": PATH,
    "validation.every": integer(0, note="0 = never"),
    "validation.classes": integer(0),
    "validation.steps": integer(0),
    "validation.num_images": integer(1),
    "checkpoint.every": integer(1),
    "resume": PATH,
    "guard.on_divergence": optional(one_of("stop", "rollback")),
    "guard.lr_factor": optional(number(0, 1, lo_open=True, hi_open=True)),
    "guard.max_rollbacks": optional(integer(0)),
    "compare_baselines": BOOLEAN,
    "objective": one_of(*OBJECTIVES),
    "objective_on": one_of("targets", "validation"),
    "gan.name": TEXT,
    "gan.z_dim": integer(1),
    "gan.width": integer(1),
    "gan.norm": one_of("layer", "none"),
    "gan.loss": one_of(*LOSSES),
    "gan.gp_weight": number(0),
    "gan.r1_weight": number(0),
    "gan.spectral_norm": BOOLEAN,
    "gan.d_steps": integer(1),
    "gan.g_steps": integer(1),
    "gan.blocks": optional(integer(1)),
    "gan.layers": optional(integer(1)),
    "gan.ways": optional(integer(1)),
    **{f"augment.transform.{k}": optional(r) for k, r in AUGMENT.items()},
}

FEWSHOT: dict[str, Rule] = {
    **COMMON,
    "fewshot.ways": integer(2),
    "fewshot.shots": integer(1),
    "fewshot.queries": integer(1),
    "fewshot.episodes": integer(2, note="a confidence interval needs 2"),
    "fewshot.workers": Rule("1 (one process) or more", lambda v: _is_int(v) and v >= 1),
    "fewshot.confidence": number(0, 1, lo_open=True, hi_open=True),
    "fewshot.learners": NAMES,
    "fewshot.arms": NAMES,
    "fewshot.synthetic_path": PATH,
    "fewshot.objective.learner": NAME,
    "fewshot.objective.arm": NAME,
    "learners.maml.width": optional(integer(1)),
    "learners.maml.iterations": optional(integer(0)),
    "learners.maml.meta_batch_size": optional(integer(1)),
    "learners.maml.inner_steps": optional(integer(1)),
    "learners.maml.test_steps": optional(integer(0)),
    "learners.maml.inner_lr": optional(LR),
    "learners.maml.meta_lr": optional(LR),
    "learners.maml.first_order": optional(BOOLEAN),
    "learners.plain.steps": optional(integer(1)),
    "learners.plain.lr": optional(LR),
    "learners.plain.width": optional(integer(1)),
    "arms.classic.copies": optional(integer(1)),
    "arms.mixup.alpha": optional(number(0, lo_open=True)),
    "arms.mixup.copies": optional(integer(1)),
    "arms.learned.copies": optional(integer(1)),
    **{f"arms.learned.start.{k}": optional(number(0)) for k in ("rotate", "translate", "noise")},
    "arms.learned.iterations": optional(integer(0)),
    "arms.learned.inner_steps": optional(integer(1)),
    "arms.learned.inner_lr": optional(LR),
    "arms.learned.meta_lr": optional(LR),
    "arms.learned.width": optional(integer(1)),
    "arms.synthetic.per_class": optional(integer(1)),
    "arms.gan.checkpoint": optional(PATH),
    "arms.gan.per_class": optional(integer(1)),
    "arms.gan.steps": optional(integer(0, note="null = the run's finetune.steps", null=True)),
    "arms.gan.optimizer.name": optional(one_of(*OPTIMIZERS)),
    "arms.gan.optimizer.lr": optional(LR),
    "arms.gan.optimizer.betas": optional(BETAS),
    **{f"classic_augment.transform.{k}": optional(r) for k, r in AUGMENT.items()},
}
HARDWARE = {k: r for k, r in COMMON.items() if k.startswith("hardware.")}
# a class folder's name: `class_name=7` arrives as an integer
CLASS_NAME = Rule(
    "a name or null", lambda v: v is None or (isinstance(v, str | int) and not isinstance(v, bool))
)

GENERATE: dict[str, Rule] = {
    "checkpoint": TEXT,
    "num_images": integer(1),
    "out": PATH,
    "class_name": CLASS_NAME,
    "shots": PATH,
    "steps": integer(0, note="null = the run's finetune.steps", null=True),
    "seed": integer(0, MAX_SEED),
    "batch_size": integer(1, note="null = the run's generate.batch_size", null=True),
    **HARDWARE,
}

# metric=domain's keys are COMMON's; metric=inception has keys of its own
DOMAIN_METRIC = {k: r for k, r in COMMON.items() if k.startswith("metric.")}
EVALUATE: dict[str, Rule] = {
    **{k: r for k, r in COMMON.items() if not k.startswith("metric.") and k != "progress"},
    "real": TEXT,
    "fake": TEXT,
    "shots": PATH,
    "class_name": CLASS_NAME,
    "k": integer(1, note="the nearest neighbour of precision and recall"),
    "metric.name": one_of("domain", "inception"),
    "metric.kid_subset_size": integer(2),
    "metric.kid_subsets": integer(1),
    **{k: optional(r) for k, r in DOMAIN_METRIC.items() if k not in ("metric.name",
       "metric.kid_subset_size", "metric.kid_subsets")},
    "metric.weights_path": optional(PATH),
    "metric.download": optional(BOOLEAN),
}  # fmt: skip
TABLES = {"train": TRAIN, "fewshot": FEWSHOT, "generate": GENERATE, "evaluate": EVALUATE}

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


def _meta_nodes(cfg: DictConfig) -> list[str]:
    baselines = cfg.get("baselines") or {}
    return ["meta_algo", *(f"baselines.{name}" for name in baselines)]


def _check_meta_algo(cfg: DictConfig, prefix: str) -> None:
    node = OmegaConf.select(cfg, prefix)
    _check_rules(cfg, [(f"{prefix}.{k}", r) for k, r in META_ALGO.items()])
    if node.get("algorithm") is None:
        return
    _check_rules(cfg, [(f"{prefix}.{k}", optional(r)) for k, r in TRAINING_META_ALGO.items()])
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
    size = int(cfg.dataset.image_size)
    module = str(OmegaConf.select(cfg, "gan.generator._target_", default="")).rpartition(".")[0]
    if module in ("metaaug.models.gan", "metaaug.models.conditional", "metaaug.models.dagan"):
        spatial_plan(size)
    elif module in ("metaaug.models.figr", "metaaug.models.resnet"):
        figr_side(size, int(cfg.gan.blocks), "FIGR" if module.endswith("figr") else "ResNet")


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
    device = str(cfg.hardware.device)
    if device == "auto":
        import torch

        return not torch.cuda.is_available()
    return device == "cpu"


def memory_estimate(cfg: DictConfig, command: str) -> tuple[int, str]:
    """A lower bound of the bytes a run needs, and how it was counted: the dataset tensor
    (float32, held twice: the classes and the metric classifier's training copy) and, on the
    CPU, one training batch of the metric classifier's first conv block (output and the
    copies kept for backward, ~2x). The GAN and its meta-training are not counted."""
    ds, m = cfg.dataset, cfg.metric
    size, channels = int(ds.image_size), int(ds.channels)
    n = DATASET_IMAGES.get(str(ds.name), 0)
    total, parts = 2 * n * channels * size**2 * 4, []
    if n:
        parts.append(f"{n} {ds.name} images x {channels} x {size}x{size} x 4 bytes, twice")
    if _on_cpu(cfg):
        width = DOMAIN_WIDTH if command == "fewshot" else max(DOMAIN_WIDTH, m.fidelity.width)
        total += int(m.batch_size) * 2 * width * size**2 * 4
        parts.append(f"a metric batch of {m.batch_size} x 2 x {width} x {size}x{size} x 4 bytes")
    return total, "; ".join(parts)


def _check_memory(cfg: DictConfig, command: str) -> None:
    ram = ram_bytes()
    need, how = memory_estimate(cfg, command)
    if ram is not None and need > ram:
        size = cfg.dataset.image_size
        raise UserError(
            f"dataset.image_size={size} needs at least {need / 2**30:.1f} GiB of memory ({how}) "
            f"but this machine has {ram / 2**30:.1f} GiB; use a smaller dataset.image_size "
            "(e.g. 32 or 64)"
        )


def check_keys(cfg: DictConfig, command: str) -> None:
    """The mandatory values and the table of `command` alone: for commands that split no
    dataset and train nothing (generate, evaluate). Reads no file."""
    _missing(cfg)
    _check_rules(cfg, TABLES[command].items())


def check_config(cfg: DictConfig, command: str) -> None:
    """The config of `command` ("train" or "fewshot") alone: every value in the table, the
    pairs of keys that must agree, the image size, the memory estimate. Reads no file."""
    _missing(cfg)
    _check_rules(cfg, TABLES[command].items())
    if command == "train":
        for prefix in _meta_nodes(cfg):
            _check_meta_algo(cfg, prefix)
    _check_cross(cfg, command)
    if command == "train":
        _check_gan_size(cfg)
    _check_memory(cfg, command)


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


def check_paths(cfg: DictConfig, command: str) -> None:
    """The folders the config names exist, are folders and can be listed."""
    _check_folder("dataset.root", cfg.dataset.get("root"), f"the folder holding the "
                  f"{cfg.dataset.name} data")  # fmt: skip
    if command == "train":
        _check_folder("target.path", cfg.target.get("path"), "a folder of images or of class "
                      "folders")  # fmt: skip


def check(cfg: DictConfig, command: str) -> None:
    """Everything `command` can check before any work: the config, then the folders it names."""
    check_config(cfg, command)
    check_paths(cfg, command)
