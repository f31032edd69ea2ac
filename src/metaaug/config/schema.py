"""The typed config: one dataclass per command here and per kind of group option
(`config/groups.py`), registered with Hydra's ConfigStore (`schema_<name>`) and named first in
each YAML file's defaults list, so that OmegaConf holds every value to its type as Hydra
composes. A field's `Rule` (in its metadata) says its range or choices in the words of the
one-line refusal; `metaaug.config.validate` applies them, read off by dotted key. A group's
field is typed `Any` and names its base schema (`group(Base)`): each option extends the base,
and a key only some options have (`gan.blocks`) is optional. `meta_algo` and the
`baselines.<arm>` nodes are checked one node at a time (`group_table(MetaAlgo)`), since an arm
without an algorithm (scratch) reads only `iterations`.
"""

import re
from dataclasses import dataclass, field
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING

from metaaug.config.groups import (
    Augment,
    Dataset,
    DomainMetric,
    Gan,
    Hardware,
    MetaAlgo,
    Metric,
    Optimizer,
)
from metaaug.config.rules import (
    BOOLEAN,
    CLASS_NAME,
    LR,
    MAX_SEED,
    NAME,
    NAMES,
    PATH,
    PROGRESS,
    STEPS,
    TEXT,
    Rule,
    group,
    group_table,
    integer,
    is_int,
    key,
    node,
    number,
    one_of,
    optional,
    subclasses,
    table_of,
)
from metaaug.metrics.names import OBJECTIVES


@dataclass
class Target:
    class_name: Any = None
    classes: Any = None
    path: str | None = key(PATH)
    shots: int = key(integer(1))


@dataclass
class Finetune:
    steps: int = key(integer(0, note="0 = no fine-tune"))
    batch_size: int | None = key(integer(1, note="null = all shots", null=True))
    eval_steps: list[int] | None = key(STEPS)
    optimizer: Optimizer = node(Optimizer)


@dataclass
class Generate:
    num_images: int = key(integer(1))
    batch_size: int = key(integer(1))
    out: str | None = key(PATH)


@dataclass
class Validation:
    every: int = key(integer(0, note="0 = never"))
    classes: int = key(integer(0))
    steps: int = key(integer(0))
    num_images: int = key(integer(1))


@dataclass
class Checkpoint:
    every: int = key(integer(1))


@dataclass
class Guard:
    on_divergence: str = key(optional(one_of("stop", "rollback")))
    lr_factor: float = key(optional(number(0, 1, lo_open=True, hi_open=True)))
    max_rollbacks: int = key(optional(integer(0)))


# each command's keys in its YAML file's order, which `--cfg job` and a run's config.yaml show
@dataclass
class TrainCommand:
    seed: int = key(integer(0, MAX_SEED))
    target: Target = node(Target)
    finetune: Finetune = node(Finetune)
    generate: Generate = node(Generate)
    validation: Validation = node(Validation)
    checkpoint: Checkpoint = node(Checkpoint)
    resume: str | None = key(PATH)
    guard: Guard = node(Guard)
    compare_baselines: bool = key(BOOLEAN)
    objective: str = key(one_of(*OBJECTIVES))
    objective_on: str = key(one_of("targets", "validation"))
    progress: Any = key(PROGRESS)
    dataset: Any = group(Dataset)
    gan: Any = group(Gan)
    meta_algo: Any = MISSING  # meta nodes: checked one by one (validate)
    baselines: Any = field(default_factory=dict)
    augment: Any = group(Augment)
    hardware: Any = group(Hardware)
    metric: Any = group(DomainMetric)


# --- fewshot ---------------------------------------------------------------------------------
@dataclass
class Objective:
    learner: str | None = key(NAME)
    arm: str | None = key(NAME)


@dataclass
class Episodes:
    ways: int = key(integer(2))
    shots: int = key(integer(1))
    queries: int = key(integer(1))
    episodes: int = key(integer(2, note="a confidence interval needs 2"))
    classes: str = key(optional(one_of("test", "val")))
    workers: int = key(Rule("1 (one process) or more", lambda v: is_int(v) and v >= 1))
    confidence: float = key(number(0, 1, lo_open=True, hi_open=True))
    learners: list[str] = key(NAMES)
    synthetic_path: str | None = key(PATH)
    arms: list[str] = key(NAMES)
    objective: Objective = node(Objective)


@dataclass
class MamlLearner:
    _target_: str = MISSING
    width: int = key(optional(integer(1)))
    iterations: int = key(optional(integer(0)))
    meta_batch_size: int = key(optional(integer(1)))
    inner_steps: int = key(optional(integer(1)))
    test_steps: int = key(optional(integer(0)))
    inner_lr: float = key(optional(LR))
    meta_lr: float = key(optional(LR))
    first_order: bool = key(optional(BOOLEAN))


@dataclass
class PlainLearner:
    _target_: str = MISSING
    steps: int = key(optional(integer(1)))
    lr: float = key(optional(LR))
    width: int = key(optional(integer(1)))


@dataclass
class Learners:
    protonet: Any = MISSING
    maml: MamlLearner = node(MamlLearner)
    plain: PlainLearner = node(PlainLearner)


@dataclass
class Copies:  # arms.classic: copies under classic_augment's transform
    _target_: str = MISSING
    copies: int = key(optional(integer(1)))
    transform: Any = None


@dataclass
class Mixup:
    _target_: str = MISSING
    alpha: float = key(optional(number(0, lo_open=True)))
    copies: int = key(optional(integer(1)))


@dataclass
class Magnitudes:
    rotate: float = key(optional(number(0)))
    translate: float = key(optional(number(0)))
    noise: float = key(optional(number(0)))


@dataclass
class Learned:
    _target_: str = MISSING
    copies: int = key(optional(integer(1)))
    start: Magnitudes = node(Magnitudes)
    iterations: int = key(optional(integer(0)))
    inner_steps: int = key(optional(integer(1)))
    inner_lr: float = key(optional(LR))
    meta_lr: float = key(optional(LR))
    width: int = key(optional(integer(1)))


@dataclass
class Synthetic:
    per_class: int = key(optional(integer(1)))
    filter: bool = key(optional(BOOLEAN))
    weight: float = key(optional(number(0)))


@dataclass
class GanArm(Synthetic):
    checkpoint: str | None = key(optional(PATH))
    steps: int | None = key(optional(integer(0, note="null = the run's finetune.steps", null=True)))
    # {name, lr, betas} or null: untyped, since a typed node holding null cannot be iterated
    optimizer: Any = node(Optimizer, None)


@dataclass
class Arms:
    none: Any = MISSING
    classic: Copies = node(Copies)
    mixup: Mixup = node(Mixup)
    learned: Learned = node(Learned)
    synthetic: Synthetic = node(Synthetic)
    gan: GanArm = node(GanArm)


@dataclass
class FewshotCommand:
    seed: int = key(integer(0, MAX_SEED))
    task: str | None = key(PATH)
    resume: str | None = key(PATH)
    dataset: Any = group(Dataset)
    fewshot: Episodes = node(Episodes)
    learners: Learners = node(Learners)
    arms: Arms = node(Arms)
    progress: Any = key(PROGRESS)
    hardware: Any = group(Hardware)
    metric: Any = group(DomainMetric)
    classic_augment: Any = group(Augment)


# --- generate and evaluate -------------------------------------------------------------------
@dataclass
class GenerateCommand:
    checkpoint: str = key(TEXT)
    num_images: int = key(integer(1))
    out: str | None = key(PATH)
    class_name: Any = key(CLASS_NAME)
    shots: str | None = key(PATH)
    steps: int | None = key(integer(0, note="null = the run's finetune.steps", null=True))
    seed: int = key(integer(0, MAX_SEED))
    batch_size: int | None = key(integer(1, note="null = the run's generate.batch_size", null=True))
    filter: bool = key(BOOLEAN)
    hardware: Any = group(Hardware)


@dataclass
class EvaluateCommand:
    seed: int = key(integer(0, MAX_SEED))
    real: str = key(TEXT)
    fake: str = key(TEXT)
    shots: str | None = key(PATH)
    class_name: Any = key(CLASS_NAME)
    k: int = key(integer(1, note="the nearest neighbour of precision and recall"))
    dataset: Any = group(Dataset)
    hardware: Any = group(Hardware)
    metric: Any = group(Metric)


COMMANDS: dict[str, type] = {"train": TrainCommand, "fewshot": FewshotCommand,
                              "generate": GenerateCommand, "evaluate": EvaluateCommand}  # fmt: skip


def rule_for(command: str, path: str) -> Rule | None:
    """The rule of one dotted key of `command`'s config (a meta node's keys: MetaAlgo's)."""
    parts = path.split(".")
    if parts[0] == "meta_algo" or (parts[0] == "baselines" and len(parts) > 2):
        rest = ".".join(parts[1 if parts[0] == "meta_algo" else 2 :])
        return group_table(MetaAlgo).get(rest)
    return table_of(COMMANDS[command]).get(path)


def register() -> None:
    """Store every schema as `schema_<name>`, the name the YAML files' defaults lists use."""
    store = ConfigStore.instance()
    bases = (Dataset, Gan, MetaAlgo, Augment, Hardware)  # with every option's schema
    groups = [cls for base in bases for cls in (base, *subclasses(base))]
    for cls in (*COMMANDS.values(), *groups, DomainMetric):
        name = re.sub(r"(?<!^)(?=[A-Z])", "_", cls.__name__).lower()
        store.store(name=f"schema_{name}", node=cls)


register()
