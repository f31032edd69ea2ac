"""The schemas of the config groups (`dataset`, `gan`, `meta_algo`, `augment`, `hardware`,
`metric`): a base dataclass per group, and a subclass for the options with keys of their own
(`BlockGan`: figr and resnet's `blocks`). Each YAML option names its class in its defaults
list (`config/schema.py` registers them); a field's `Rule` says its range or choices."""

import re
from dataclasses import dataclass
from typing import Any

from omegaconf import MISSING

from metaaug.config.rules import (
    BETAS,
    BOOLEAN,
    FOLDER,
    LR,
    OPTIMIZERS,
    PATH,
    TEXT,
    Rule,
    integer,
    key,
    node,
    number,
    one_of,
    optional,
)
from metaaug.data.images import alpha_level
from metaaug.errors import UserError
from metaaug.gan.losses import LOSSES
from metaaug.models.classifier import MIN_IMAGE_SIZE
from metaaug.precision import PRECISIONS


def _alpha_ok(v: Any) -> bool:
    try:
        alpha_level(v)
    except UserError:
        return False
    return True


@dataclass
class Dataset:
    name: str = key(TEXT)
    root: str | None = key(PATH)
    image_size: int = key(integer(MIN_IMAGE_SIZE))
    channels: int = key(one_of(1, 3))
    alpha_background: Any = key(optional(Rule("white, black or a gray level 0-255", _alpha_ok)))
    split_by: str = key(optional(one_of("class", "group")))
    val_fraction: float = key(number(0, 1, hi_open=True))
    test_fraction: float = key(number(0, 1, hi_open=True))
    source: Any = MISSING


@dataclass
class DownloadableDataset(Dataset):
    download: bool = key(optional(BOOLEAN))


@dataclass
class Gan:
    name: str = key(TEXT)
    z_dim: int = key(integer(1))
    width: int = key(integer(1))
    norm: str = key(one_of("layer", "none"))
    loss: str = key(one_of(*LOSSES))
    gp_weight: float = key(number(0))
    r1_weight: float = key(number(0))
    class_loss: float = key(optional(number(0)), 0.0)  # a preset of one's own may omit it: off
    diversity: float = key(optional(number(0)), 0.0)  # likewise
    spectral_norm: bool = key(BOOLEAN)
    d_steps: int = key(integer(1))
    g_steps: int = key(integer(1))
    generator: Any = MISSING
    discriminator: Any = MISSING


@dataclass
class SlotGan(Gan):  # gan=conditional: N-way tasks
    ways: int = key(integer(1))


@dataclass
class BlockGan(Gan):  # gan=figr, resnet
    blocks: int = key(integer(1))


@dataclass
class MlpGan(Gan):
    layers: int = key(integer(1))


@dataclass
class Optimizer:
    name: str = key(one_of(*OPTIMIZERS))
    lr: float = key(LR)
    betas: list[float] = key(BETAS)


@dataclass
class MetaAlgo:
    """What every meta_algo option has; without an algorithm (scratch) only `iterations` is
    read, and checked."""

    name: str = key(TEXT)
    iterations: int = key(integer(0, note="0 = no meta-training"))
    meta_batch_size: int = key(integer(1))
    inner_steps: int = key(integer(1))
    support: int = key(integer(1))
    query: int = key(integer(0))
    algorithm: Any = MISSING


@dataclass
class InnerOuter(MetaAlgo):  # reptile, maml, fomaml, metasgd
    vectorize: bool = key(BOOLEAN)
    inner_optimizer: Optimizer = node(Optimizer)
    meta_optimizer: str = key(one_of(*OPTIMIZERS))
    meta_lr: float = key(LR)
    meta_betas: list[float] = key(BETAS)


@dataclass
class Maml(InnerOuter):
    first_order: bool = key(BOOLEAN)


@dataclass
class Pretrain(MetaAlgo):
    ways: int = key(integer(1))
    optimizer: Optimizer = node(Optimizer)


@dataclass
class Classic:
    _target_: str = MISSING
    rotate: float = key(number(0))
    translate: float = key(number(0, 1))
    scale: float = key(number(0, 1, hi_open=True))
    hflip: float = key(number(0, 1))
    noise: float = key(number(0))


@dataclass
class DiffAug:
    _target_: str = MISSING
    policy: str = key(TEXT)
    translation_ratio: float = key(number(0, 1))
    cutout_ratio: float = key(number(0, 1))
    brightness: float = key(number(0))


@dataclass
class Augment:
    name: str = key(TEXT)
    transform: Any = None


@dataclass
class ClassicAugment(Augment):
    transform: Classic = node(Classic)


@dataclass
class DiffAugment(Augment):
    transform: DiffAug = node(DiffAug)


@dataclass
class Hardware:
    device: str = key(
        Rule(
            "auto, cpu, cuda or cuda:N",
            lambda v: isinstance(v, str) and re.fullmatch(r"auto|cpu|cuda(:\d+)?", v) is not None,
            choice=True,
        )
    )
    threads: int | None = key(integer(1, note="null = torch's default", null=True))
    deterministic: bool = key(BOOLEAN)
    # `precision: 32` is the integer 32 in YAML
    precision: Any = key(
        Rule(
            ", ".join(PRECISIONS[:-1]) + f" or {PRECISIONS[-1]}",
            lambda v: isinstance(v, int | str) and not isinstance(v, bool) and str(v) in PRECISIONS,
            choice=True,
        )
    )
    channels_last: bool = key(BOOLEAN)
    compile: bool = key(BOOLEAN)
    reuse_memory: bool = key(BOOLEAN)
    distributed: bool = key(optional(BOOLEAN), False)  # absent from a preset of one's own


@dataclass
class Metric:
    """What both metrics have (evaluate offers both; train and fewshot, domain alone)."""

    name: str = key(one_of("domain", "inception"))
    batch_size: int = key(integer(1))
    kid_subset_size: int = key(integer(2))
    kid_subsets: int = key(integer(1))


@dataclass
class Fidelity:
    noise: float = key(number(0))
    width: int = key(integer(1))
    feature_dim: int = key(integer(1))
    steps_per_class: int = key(integer(0))


@dataclass
class DomainMetric(Metric):
    name: str = key(one_of("domain"))
    cache_dir: str = key(FOLDER)
    epochs: int = key(integer(0))
    min_steps: int = key(integer(0))
    fidelity: Fidelity = node(Fidelity)


@dataclass
class InceptionMetric(Metric):
    """metric=inception, with its defaults: `evaluate` alone stores it (config/evaluate.py),
    rather than offering it to train and fewshot in conf/metric/. weights_path: torch-fidelity's
    FID weights."""

    name: str = key(one_of("inception"), "inception")
    weights_path: str | None = key(PATH, "${oc.env:METAAUG_INCEPTION_WEIGHTS,null}")
    download: bool = key(BOOLEAN, False)  # true: fetch the weights (needs internet)
    batch_size: int = key(integer(1), 32)
    kid_subset_size: int = key(integer(2), 100)
    kid_subsets: int = key(integer(1), 50)
