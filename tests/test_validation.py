"""Every config value is checked before any work: a bad one gets one line naming the key, the
value and what is accepted (exit 2, no traceback); every shipped config passes."""

from __future__ import annotations

from pathlib import Path

import pytest
from omegaconf import DictConfig, OmegaConf

from metaaug import hardware
from metaaug.config import validate
from metaaug.config.groups import Augment, Dataset, DomainMetric, Gan, Hardware, MetaAlgo
from metaaug.config.overrides import check as check_overrides
from metaaug.config.overrides import composed
from metaaug.config.rules import group_table, table_of
from metaaug.config.schema import COMMANDS
from metaaug.errors import UserError
from tests.conftest import Runner, assert_one_line_error

CONF = Path(__file__).resolve().parents[1] / "src" / "metaaug" / "conf"
EXPERIMENTS = sorted(p.stem for p in (CONF / "experiment").glob("*.yaml"))
OPTIONS = [
    (group.name, option.stem)
    for group in sorted(CONF.iterdir())
    if group.is_dir() and group.name not in ("experiment", "hparams_search")
    for option in sorted(group.glob("*.yaml"))
]
GAN_ARM_OPTIMIZER = "{name:adam,lr:1e-3,betas:[0.5,0.999]}"


def _compose(command: str, *args: str) -> DictConfig:
    """As the command line composes it: a value of the wrong type is refused here."""
    return composed(command, list(args))


def _refusal(command: str, *args: str) -> str:
    with pytest.raises(UserError) as err:
        validate.check_config(_compose(command, *args), command)
    assert "\n" not in str(err.value)
    return str(err.value)


# --- through the real command line: what a hostile tester found ---------------------------


@pytest.mark.parametrize(
    ("override", "fragments"),
    [("meta_algo.iterations=abc", ["meta_algo.iterations='abc'", "integer >= 0"]),
     ("meta_algo.meta_lr=fast", ["meta_algo.meta_lr='fast'", "number > 0"]),
     ("seed=1e20", ["seed=1e+20", "integer in 0..4294967295"]),
     ("meta_algo.iterations=-5", ["meta_algo.iterations=-5", "integer >= 0"]),
     ("finetune.steps=-3", ["finetune.steps=-3", "integer >= 0 (0 = no fine-tune)"]),
     ("checkpoint.every=0", ["checkpoint.every=0", "integer >= 1"]),
     ("generate.num_images=0", ["generate.num_images=0", "integer >= 1"]),
     ("dataset=imagefolder", ["dataset.root is not set", "dataset.root="]),
     ("progress=maybe", ["progress='maybe'", "true, false or auto"]),
     ("compare_baselines=maybe", ["compare_baselines='maybe'", "true or false"]),
     ("dataset.image_size=65536", ["dataset.image_size=65536", "GiB of memory"]),
     ("meta_algo.inner_optimizer.lr=0", ["meta_algo.inner_optimizer.lr=0", "number > 0"]),
     ("finetune.optimizer.lr=-0.001", ["finetune.optimizer.lr=-0.001", "number > 0"]),
     ("gan.width=0", ["gan.width=0", "integer >= 1"]),
     ("hardware.threads=0", ["hardware.threads=0", "or null (null = torch's default)"]),
     ("baselines.pretrain.iterations=-1", ["baselines.pretrain.iterations=-1"]),
     ("metric.cache_dir=''", ["metric.cache_dir=''", "a folder's path"])],
)  # fmt: skip
def test_bad_train_value_is_one_line(refused: Runner, override: str, fragments: list[str]) -> None:
    assert_one_line_error(refused("train", override), *fragments)


@pytest.mark.parametrize(
    ("override", "fragments"),
    [("fewshot.episodes=1", ["fewshot.episodes=1", "confidence interval"]),
     ("fewshot.ways=1", ["fewshot.ways=1", "integer >= 2"]),
     ("fewshot.queries=abc", ["fewshot.queries='abc'"]),
     ("fewshot.confidence=1.5", ["fewshot.confidence=1.5", "(0, 1)"]),
     ("progress=1", ["progress=1", "true, false or auto"]),
     ("seed=-1", ["seed=-1"])],
)  # fmt: skip
def test_bad_fewshot_value_is_one_line(
    refused: Runner, override: str, fragments: list[str]
) -> None:
    assert_one_line_error(refused("fewshot", override), *fragments)


def test_more_threads_than_cores_is_refused(refused: Runner) -> None:
    cpus = hardware.usable_cpus()
    proc = refused("train", f"hardware.threads={cpus + 1}")
    assert_one_line_error(proc, f"hardware.threads={cpus + 1}", f"may use {cpus} CPU core",
                          f"use 1..{cpus} or null")  # fmt: skip
    validate.check_config(_compose("train", f"hardware.threads={cpus}"), "train")


def test_image_size_beyond_memory(refused: Runner) -> None:
    need, _ = validate.memory_estimate(_compose("train", "dataset.image_size=1024"), "train")
    ram = validate.ram_bytes()
    if ram is None or need <= ram:
        pytest.skip(f"this machine has memory for image_size 1024 ({ram} bytes)")
    proc = refused("train", "dataset.image_size=1024")
    assert_one_line_error(proc, "dataset.image_size=1024", "GiB of memory", "smaller")


@pytest.mark.parametrize("command", ["train", "fewshot"])
def test_dataset_root_that_is_a_file(refused: Runner, tmp_path: Path, command: str) -> None:
    root = tmp_path / "omniglot.zip"
    root.write_bytes(b"not a folder")
    proc = refused(command, "dataset=omniglot", f"dataset.root={root}")
    assert_one_line_error(proc, "dataset.root", "omniglot.zip", "is a file, not a folder")


# --- the validator itself ---------------------------------------------------------------


@pytest.mark.parametrize("command", ["train", "fewshot"])
def test_default_config_passes(command: str) -> None:
    validate.check_config(_compose(command), command)


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_every_experiment_passes(experiment: str) -> None:
    validate.check_config(_compose("train", f"experiment={experiment}"), "train")


@pytest.mark.parametrize(
    "overrides", [["hparams_search=optuna"], ["experiment=omniglot_cpu", "hparams_search=omniglot"]]
)
def test_search_presets_pass(overrides: list[str]) -> None:
    validate.check_config(_compose("train", *overrides), "train")


@pytest.mark.parametrize(("group", "option"), OPTIONS)
def test_every_group_option_passes(group: str, option: str) -> None:
    extra = ["dataset.root=/data"] if option == "imagefolder" else []
    validate.check_config(_compose("train", f"{group}={option}", *extra), "train")


@pytest.mark.parametrize("value", ["true", "false", "auto"])
def test_progress_accepts_booleans_and_auto(value: str) -> None:
    validate.check_config(_compose("train", f"progress={value}"), "train")


@pytest.mark.parametrize(
    ("spelling", "expected"),
    [("off", False), ("No", False), ("n", False), ("FALSE", False),
     ("on", True), ("yes", True), ("Y", True), ("True", True)],
)  # fmt: skip
def test_booleans_in_other_spellings_are_booleans(spelling: str, expected: bool) -> None:
    """`progress=off` means false (it used to be the string 'off', which is truthy: the bars
    showed anyway); the checked config holds the boolean, so every reader sees it."""
    cfg = _compose(
        "train", "meta_algo=maml", f"progress={spelling}", f"compare_baselines={spelling}",
        f"hardware.channels_last={spelling}", f"meta_algo.first_order={spelling}",
    )  # fmt: skip
    validate.check_config(cfg, "train")
    values = [cfg.progress, cfg.compare_baselines, cfg.hardware.channels_last,
              cfg.meta_algo.first_order]  # fmt: skip
    assert values == [expected] * 4 and all(type(v) is bool for v in values)
    fewshot = _compose("fewshot", f"progress={spelling}", f"hardware.compile={spelling}")
    validate.check_config(fewshot, "fewshot")
    assert fewshot.progress is expected and fewshot.hardware.compile is expected


GROUP_SCHEMAS = {"dataset": Dataset, "gan": Gan, "meta_algo": MetaAlgo, "augment": Augment,
                 "hardware": Hardware, "metric": DomainMetric}  # fmt: skip


@pytest.mark.parametrize(("group", "option"), OPTIONS)
def test_every_option_is_typed(group: str, option: str) -> None:
    """Each shipped option names its schema: OmegaConf holds its values to their types."""
    cfg = _compose("train", f"{group}={option}", "dataset.root=/d")
    assert issubclass(OmegaConf.get_type(cfg[group]), GROUP_SCHEMAS[group])
    assert OmegaConf.get_type(cfg) is COMMANDS["train"]


@pytest.mark.parametrize(
    ("args", "fragments"),
    [(["seed=0,abc"], ["seed='abc'", "integer in 0..4294967295"]),
     (["gan.width=8,9.5"], ["gan.width=9.5", "integer >= 1"]),
     (["meta_algo.meta_lr=1e-3,fast"], ["meta_algo.meta_lr='fast'", "number > 0"])],
)  # fmt: skip
def test_every_value_of_a_sweep_is_typed(args: list[str], fragments: list[str]) -> None:
    """A sweep's later value of the wrong type is refused before the first job starts."""
    with pytest.raises(UserError) as err:
        check_overrides("train", args)
    assert all(f in str(err.value) for f in fragments), str(err.value)


def test_an_untyped_option_of_ones_own_is_still_checked(tmp_path: Path) -> None:
    """An option in a config dir of one's own, naming no schema, gets the group's rules."""
    dcgan = (CONF / "gan" / "dcgan.yaml").read_text().split("\n")
    dropped = ("defaults:", "schema", "_self_")
    plain = "\n".join(line for line in dcgan if not any(d in line for d in dropped))
    (tmp_path / "gan").mkdir()
    (tmp_path / "gan" / "mine.yaml").write_text(plain.replace("z_dim: 64", "z_dim: 0"))
    cfg = _compose("train", f"hydra.searchpath=[file://{tmp_path}]", "gan=mine")
    assert OmegaConf.get_type(cfg.gan) is dict
    with pytest.raises(UserError, match=r"gan\.z_dim=0: use an integer >= 1"):
        validate.check_config(cfg, "train")


def test_every_optional_key_exists_in_some_option() -> None:
    """A misspelt key in the table would never be checked: each must name a real key."""
    configs = [_compose("train", f"{g}={o}", "dataset.root=/d") for g, o in OPTIONS]
    present = set()
    for cfg in configs:
        flat = OmegaConf.to_container(cfg, resolve=False)
        present |= set(_paths(flat))
    keys = [k for k, rule in table_of(COMMANDS["train"]).items() if rule.optional]
    keys += [f"meta_algo.{k}" for k in group_table(MetaAlgo)]
    assert [k for k in keys if k not in present] == []
    fewshot_cfg = _compose("fewshot", f"arms.gan.optimizer={GAN_ARM_OPTIMIZER}")
    validate.check_config(fewshot_cfg, "fewshot")
    fewshot = set(_paths(OmegaConf.to_container(fewshot_cfg, resolve=False)))
    # classic_augment is an augment option composed elsewhere: its keys are augment's
    keys = [k.removeprefix("classic_") for k in table_of(COMMANDS["fewshot"])]
    assert [k for k in keys if k not in fewshot | present] == []


def _paths(node: object, prefix: str = ""):
    if isinstance(node, dict):
        for key, value in node.items():
            yield f"{prefix}{key}"
            yield from _paths(value, f"{prefix}{key}.")


@pytest.mark.parametrize(
    ("command", "overrides", "fragments"),
    [("train", ["meta_algo.inner_steps=0"], ["meta_algo.inner_steps=0"]),
     ("train", ["meta_algo.meta_batch_size=0"], ["meta_algo.meta_batch_size=0"]),
     ("train", ["meta_algo.support=0"], ["meta_algo.support=0"]),
     ("train", ["validation.every=-1"], ["validation.every=-1", "0 = never"]),
     ("train", ["target.shots=0"], ["target.shots=0"]),
     ("train", ["gan.z_dim=0"], ["gan.z_dim=0"]),
     ("train", ["gan.loss=wgan"], ["gan.loss='wgan' is not known", "wgan_gp"]),
     ("train", ["seed=true"], ["seed=True"]),
     ("train", ["meta_algo.iterations=1e4"], ["meta_algo.iterations=10000.0"]),
     ("train", ["meta_algo.meta_lr=inf"], ["meta_algo.meta_lr=inf"]),
     ("train", ["meta_algo.meta_betas=[0.9]"], ["meta_algo.meta_betas=[0.9]"]),
     ("train", ["meta_algo.meta_betas=[0.9,x]"], ["meta_algo.meta_betas=[0.9, 'x']: use a list"]),
     ("train", ["finetune.eval_steps=[5,a]"], ["finetune.eval_steps=[5, 'a']: use a list"]),
     ("train", ["hardware.device=gpu"], ["hardware.device='gpu' is not known"]),
     ("train", ["hardware.precision=fp8"], ["hardware.precision='fp8' is not known"]),
     ("train", ["metric.kid_subset_size=1"], ["metric.kid_subset_size=1"]),
     ("train", ["metric.epochs=0", "metric.min_steps=0"], ["train no classifier"]),
     ("train", ["dataset.val_fraction=0.5", "dataset.test_fraction=0.5"], ["sum to less"]),
     ("train", ["dataset.split_by=alphabet"], ["dataset.split_by='alphabet'", "class or group"]),
     ("train", ["finetune.eval_steps=[50,500]"], ["[500]", "1..100"]),
     ("train", ["meta_algo=maml", "meta_algo.query=0"], ["meta_algo.query=0"]),
     ("train", ["dataset.image_size=20"], ["image_size=20", "16, 28, 32, 64"]),
     ("train", ["gan=figr", "dataset.image_size=28"], ["image_size=28", "gan.blocks=4"]),
     ("train", ["dataset.image_size=4", "gan=mlp"], ["dataset.image_size=4", ">= 8"]),
     ("train", ["guard.on_divergence=retry"], ["guard.on_divergence='retry'"]),
     ("train", ["augment=classic", "augment.transform.hflip=2"], ["hflip=2"]),
     ("fewshot", ["fewshot.shots=0"], ["fewshot.shots=0"]),
     ("fewshot", ["fewshot.workers=abc"], ["fewshot.workers='abc': use 1 (one process)"]),
     ("fewshot", ["learners.plain.lr=0"], ["learners.plain.lr=0"]),
     ("fewshot", ["arms.gan.steps=-1"], ["arms.gan.steps=-1", "or null"]),
     ("fewshot", ["dataset.channels=2"], ["dataset.channels=2", "1 or 3"])],
)  # fmt: skip
def test_bad_value_is_refused(command: str, overrides: list[str], fragments: list[str]) -> None:
    message = _refusal(command, *overrides)
    for fragment in fragments:
        assert fragment in message, message


def test_scratch_checks_only_its_iterations() -> None:
    # scratch's inner_steps=0 and query=0 are never read: it has no algorithm
    validate.check_config(_compose("train", "meta_algo=scratch"), "train")
    assert "meta_algo.iterations='x'" in _refusal("train", "meta_algo=scratch",
                                                  "meta_algo.iterations=x")  # fmt: skip


def test_zero_counts_that_mean_something_pass() -> None:
    cfg = _compose("train", "meta_algo.iterations=0", "finetune.steps=0", "validation.every=0",
                   "finetune.eval_steps=null", "hardware.threads=null")  # fmt: skip
    validate.check_config(cfg, "train")


def test_memory_estimate_against_a_small_machine(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(validate, "ram_bytes", lambda: 8 * 2**30)
    assert "8.0 GiB" in _refusal("train", "dataset.image_size=512", "hardware=cpu")
    validate.check_config(_compose("train", "dataset.image_size=64", "hardware=cpu"), "train")


def test_memory_estimate_counts_images_channels_and_side() -> None:
    cfg = _compose("train", "dataset.image_size=32", "hardware=cuda")  # no batch on the host
    need, how = validate.memory_estimate(cfg, "train")
    assert need == (2 * 1797 + 500) * 1 * 32 * 32 * 4  # the dataset twice, 500 generated
    assert "1797 digits images" in how and "500 generated images" in how
    fewshot, _ = validate.memory_estimate(_compose("fewshot", "hardware=cuda"), "fewshot")
    assert fewshot == 2 * 1797 * 16 * 16 * 4  # generates nothing of its own


def test_too_many_generated_images_name_their_key(monkeypatch: pytest.MonkeyPatch) -> None:
    """30 million 16x16 images are 28.6 GiB: the fix is fewer images, not a smaller size."""
    monkeypatch.setattr(validate, "ram_bytes", lambda: 24 * 2**30)
    refusal = _refusal("train", "generate.num_images=30000000")
    assert refusal.startswith("generate.num_images=30000000 needs at least 28.6 GiB")
    assert refusal.endswith("ask for fewer images per class")


def test_root_checks_touch_only_set_folders(tmp_path: Path) -> None:
    validate.check_paths(_compose("train"), "train")  # digits: no root, no target.path
    missing = _compose("train", "dataset=omniglot", f"dataset.root={tmp_path}/nowhere")
    with pytest.raises(UserError, match="does not exist"):
        validate.check_paths(missing, "train")
    image = tmp_path / "a.png"
    image.write_bytes(b"")
    with pytest.raises(UserError, match=r"target.path .* is a file, not a folder"):
        validate.check_paths(_compose("train", f"target.path={image}"), "train")


def test_unreadable_root_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(path: object) -> None:
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(validate.os, "scandir", refuse)
    cfg = _compose("train", "dataset=imagefolder", f"dataset.root={tmp_path}")
    with pytest.raises(UserError, match=r"dataset.root .* cannot be read \(Permission denied\)"):
        validate.check_paths(cfg, "train")
