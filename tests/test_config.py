"""Every config group option composes, and what it names can be built."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_module
from hydra.utils import get_method, instantiate
from omegaconf import OmegaConf

from metaaug.config import build
from metaaug.data.tasks import Task
from metaaug.meta.adapt import adapt, sample
from metaaug.models.gan import GAN

CONF = Path(__file__).resolve().parents[1] / "src" / "metaaug" / "conf"
GROUPS = sorted(p.name for p in CONF.iterdir() if p.is_dir() and not p.name.startswith("_"))
OPTIONS = [(g, y.stem) for g in GROUPS for y in sorted((CONF / g).glob("*.yaml"))]

# Keys that scripts and users rely on (docs/configuration.md).
KEYS = ["seed", "dataset.root", "dataset.image_size", "target.class_name", "target.path",
        "target.shots", "meta_algo.iterations", "meta_algo.meta_batch_size",
        "meta_algo.inner_steps", "finetune.steps", "generate.num_images", "compare_baselines",
        "objective"]  # fmt: skip


def _compose(*overrides: str):
    with initialize_config_module("metaaug.conf", version_base="1.3"):
        return compose("train", overrides=list(overrides))


def test_top_level_conf_is_the_packaged_conf() -> None:
    assert (CONF.parents[2] / "conf").resolve() == CONF.resolve()


def test_every_group_has_options() -> None:
    assert {"dataset", "gan", "meta_algo", "augment", "hardware", "metric", "experiment"} <= set(
        GROUPS
    )
    assert {o for g, o in OPTIONS if g == "dataset"} >= {
        "digits", "omniglot", "mnist", "fashion_mnist", "imagefolder"
    }  # fmt: skip


@pytest.mark.parametrize(("group", "option"), OPTIONS)
def test_option_composes_and_its_targets_exist(group: str, option: str) -> None:
    extra = ["dataset.root=/data"] if (group, option) == ("dataset", "imagefolder") else []
    cfg = _compose(f"{group}={option}", *extra)
    container = OmegaConf.to_container(cfg, resolve=True)
    for key in KEYS:
        assert OmegaConf.select(cfg, key, throw_on_missing=False) is not None or key in (
            "dataset.root", "target.class_name", "target.path"
        ), key  # fmt: skip

    def targets(node):
        if isinstance(node, dict):
            if "_target_" in node:
                yield node["_target_"]
            for value in node.values():
                yield from targets(value)

    for target in targets(container):
        assert callable(get_method(target)), target


@pytest.mark.parametrize("option", [o for g, o in OPTIONS if g == "meta_algo"])
@pytest.mark.parametrize("gan", [o for g, o in OPTIONS if g == "gan"])
@pytest.mark.parametrize("augment", [o for g, o in OPTIONS if g == "augment"])
def test_every_algorithm_gan_and_augment_runs_a_meta_iteration(
    option: str, gan: str, augment: str
) -> None:
    """Each combination composes, builds, and (for meta-learners) moves the initialization."""
    cfg = _compose(f"meta_algo={option}", f"gan={gan}", f"augment={augment}", "gan.width=4")
    pair = GAN(instantiate(cfg.gan.generator), instantiate(cfg.gan.discriminator))
    size, channels = cfg.dataset.image_size, cfg.dataset.channels
    shots = torch.rand(2, channels, size, size) * 2 - 1  # what an image-conditioned G transforms
    images = sample(pair, 2, torch.Generator(), shots=shots)
    assert images.shape == (2, channels, size, size)
    if cfg.meta_algo.algorithm is None:
        return
    overrides = {"inner_steps": 1} if "inner_steps" in cfg.meta_algo.algorithm else {}
    prec = build.precision(cfg, torch.device("cpu"), pair)
    algo = build.meta_algorithm(cfg.meta_algo, cfg, build.adversarial(cfg), prec, **overrides)
    assert algo.name == option
    before = [p.detach().clone() for p in pair.parameters()]
    s, q = cfg.meta_algo.support, cfg.meta_algo.query
    images = torch.rand(2, s + q, channels, size, size) * 2 - 1
    logs = algo.meta_step(pair, Task(images[:, :s], images[:, s:], ("x", "y")), torch.Generator())
    assert all(math.isfinite(v) for v in logs.values())
    assert any(not torch.equal(b, p) for b, p in zip(before, pair.parameters(), strict=True))


@pytest.mark.parametrize("option", [o for g, o in OPTIONS if g == "meta_algo"])
@pytest.mark.parametrize("gan", [o for g, o in OPTIONS if g == "gan"])
def test_every_algorithm_and_gan_trains_in_bf16(option: str, gan: str) -> None:
    """bf16 working copies on fp32 masters work for every pair and loop: finite losses, the
    weights stay fp32, and a fine-tune step (the live-module loop) moves them too."""
    cfg = _compose(f"meta_algo={option}", f"gan={gan}", "gan.width=4", "hardware.precision=bf16")
    pair = GAN(instantiate(cfg.gan.generator), instantiate(cfg.gan.discriminator))
    prec = build.precision(cfg, torch.device("cpu"), pair)
    assert prec.name == "bf16"
    size, channels = cfg.dataset.image_size, cfg.dataset.channels
    before = [p.detach().clone() for p in pair.parameters()]
    if cfg.meta_algo.algorithm is not None:
        overrides = {"inner_steps": 1} if "inner_steps" in cfg.meta_algo.algorithm else {}
        algo = build.meta_algorithm(cfg.meta_algo, cfg, build.adversarial(cfg), prec, **overrides)
        s, q = cfg.meta_algo.support, cfg.meta_algo.query
        images = torch.rand(2, s + q, channels, size, size) * 2 - 1
        task = Task(images[:, :s], images[:, s:], ("x", "y"))
        logs = algo.meta_step(pair, task, torch.Generator())
        assert all(math.isfinite(v) for v in logs.values())
    shots = torch.rand(4, channels, size, size) * 2 - 1
    adapt(pair, shots, 1, build.optimizer(cfg.finetune.optimizer), build.adversarial(cfg),
          torch.Generator(), precision=prec)  # fmt: skip
    assert all(p.dtype == torch.float32 and p.isfinite().all() for p in pair.parameters())
    assert any(not torch.equal(b, p) for b, p in zip(before, pair.parameters(), strict=True))


def test_experiment_demo_is_the_default_spelled_out() -> None:
    default = OmegaConf.to_container(_compose(), resolve=False)
    demo = OmegaConf.to_container(_compose("experiment=demo"), resolve=False)
    assert demo == default
