"""What each config value may be, one table per command (train, fewshot, generate,
evaluate): dotted key -> `Rule` (`config/rules.py`). Keys only some group options have are
`optional`; `metaaug.config.validate` applies the tables."""

from __future__ import annotations

import re
from typing import Any

from metaaug.config.rules import (
    BETAS,
    BOOLEAN,
    LR,
    MAX_SEED,
    NAME,
    NAMES,
    OPTIMIZERS,
    PATH,
    STEPS,
    TEXT,
    Rule,
    integer,
    is_int,
    number,
    one_of,
    optional,
)
from metaaug.data.images import alpha_level
from metaaug.errors import UserError
from metaaug.gan.losses import LOSSES
from metaaug.metrics.names import OBJECTIVES
from metaaug.models.classifier import MIN_IMAGE_SIZE
from metaaug.precision import PRECISIONS


def _alpha_ok(v: Any) -> bool:
    try:
        alpha_level(v)
    except UserError:
        return False
    return True


COMMON: dict[str, Rule] = {
    "seed": integer(0, MAX_SEED),
    "progress": one_of(True, False, "auto"),  # off/no/... are converted (as_boolean)
    "dataset.name": TEXT,
    "dataset.root": PATH,
    "dataset.download": optional(BOOLEAN),
    "dataset.image_size": integer(MIN_IMAGE_SIZE),
    "dataset.channels": one_of(1, 3),
    "dataset.alpha_background": optional(Rule("white, black or a gray level 0-255", _alpha_ok)),
    "dataset.split_by": optional(one_of("class", "group")),
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
    "gan.class_loss": optional(number(0)),  # absent from a gan preset of one's own: off
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
    "task": PATH,
    "fewshot.ways": integer(2),
    "fewshot.classes": optional(one_of("test", "val")),
    "fewshot.shots": integer(1),
    "fewshot.queries": integer(1),
    "fewshot.episodes": integer(2, note="a confidence interval needs 2"),
    "fewshot.workers": Rule("1 (one process) or more", lambda v: is_int(v) and v >= 1),
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
    "arms.synthetic.filter": optional(BOOLEAN),
    "arms.synthetic.weight": optional(number(0)),
    "arms.gan.filter": optional(BOOLEAN),
    "arms.gan.weight": optional(number(0)),
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
