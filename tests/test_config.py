"""Every config group option composes, and what it names can be built."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_module
from hydra.utils import get_method, instantiate
from omegaconf import OmegaConf

from metaaug.meta.adapt import Adversarial
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
@pytest.mark.parametrize("augment", [o for g, o in OPTIONS if g == "augment"])
def test_gan_algorithm_and_augment_instantiate(option: str, augment: str) -> None:
    cfg = _compose(f"meta_algo={option}", f"augment={augment}")
    gan = GAN(instantiate(cfg.gan.generator), instantiate(cfg.gan.discriminator))
    images = gan.generator(gan.noise(2))
    assert images.shape == (2, cfg.dataset.channels, cfg.dataset.image_size, cfg.dataset.image_size)
    if cfg.augment.transform is not None:
        out = instantiate(cfg.augment.transform)(images, torch.Generator().manual_seed(0))
        assert out.shape == images.shape
    if cfg.meta_algo.algorithm is not None:
        algo = instantiate(cfg.meta_algo.algorithm, adversarial=Adversarial())
        assert algo.name == option


def test_experiment_demo_is_the_default_spelled_out() -> None:
    default = OmegaConf.to_container(_compose(), resolve=False)
    demo = OmegaConf.to_container(_compose("experiment=demo"), resolve=False)
    assert demo == default
