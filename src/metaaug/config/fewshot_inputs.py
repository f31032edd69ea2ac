"""What `metaaug fewshot` reads besides its dataset: where its episodes come from (meta-test
classes, or the user's own tasks, `task=DIR`), and what the gan and synthetic arms read from
`metaaug train`: an initialization checkpoint (`arms.gan.checkpoint`) and synthetic folders
(`fewshot.synthetic_path`), each checked against this run's dataset and its meta-test classes
(a class the GAN saw is refused)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import torch
from omegaconf import DictConfig
from torch import Tensor

from metaaug.config import build
from metaaug.config.saved import load_saved
from metaaug.data.folders import read_classes
from metaaug.data.images import describe
from metaaug.data.sources import image_folder_flat
from metaaug.data.split import ClassSplit
from metaaug.errors import UserError
from metaaug.fewshot.arms import GanArm
from metaaug.fewshot.episodes import EpisodeSampler
from metaaug.fewshot.tasks import FixedTask, read_task, task_folders
from metaaug.io.synthetic import check_complete
from metaaug.models.conditioning import conditioning

log = logging.getLogger("metaaug.fewshot")


def episode_classes(cfg: DictConfig, split: ClassSplit) -> list[str]:
    """The held-out classes episodes come from: meta-test (`fewshot.classes=test`, to report)
    or meta-val (`val`, to choose settings on)."""
    which = cfg.fewshot.classes
    names = list(split.val if which == "val" else split.test)
    if not names:
        raise UserError(
            f"fewshot.classes={which} but the split has no meta-{which} class; raise "
            f"dataset.{which}_fraction (e.g. 0.15)"
        )
    return names


def episode_sources(
    cfg: DictConfig, classes: dict[str, Tensor], split: ClassSplit, fixed: dict[str, list[int]]
) -> dict[str, EpisodeSampler | FixedTask]:
    """{"episodes": episodes of the meta-test classes}, or with `task=DIR` each task folder of
    DIR by name (its images read as the dataset's: size, channels, polarity)."""
    f, ds = cfg.fewshot, cfg.dataset
    if cfg.task is None:
        names = episode_classes(cfg, split)
        log.info("%d-way %d-shot episodes from %d meta-%s classes (backbone: %d meta-train)",
                 f.ways, f.shots, len(names), f.classes, len(split.train))  # fmt: skip
        sampler = EpisodeSampler(classes, names, f.ways, f.shots, f.queries,
                                 cfg.seed, fixed_support=fixed)  # fmt: skip
        return {"episodes": sampler}

    def read(folder: Path, key: str) -> dict[str, Tensor]:
        return read_classes(folder, key, **build.image_format(ds))

    tasks = {}
    for folder in task_folders(Path(cfg.task)):
        task = read_task(folder, read)
        if task.name in tasks:
            raise UserError(f"task='{cfg.task}' holds two tasks named '{task.name}'; rename one")
        tasks[task.name] = task
    log.info(
        "%d task(s) of your own from %s, each repeated %d times (backbone: %d meta-train "
        "classes of %s)",
        len(tasks),
        cfg.task,
        f.episodes,
        len(split.train),
        ds.name,
    )
    return tasks


def gan_arm(cfg: DictConfig, test_classes: list[str], device: torch.device) -> GanArm:
    """The gan arm: the initialization of a `metaaug train` run (its meta_init.pt), adapted
    with that run's fine-tune settings unless `arms.gan` sets its own."""
    node = cfg.arms.gan
    if node.checkpoint is None:
        raise UserError(
            "fewshot.arms has gan but arms.gan.checkpoint is not set; point it at "
            "checkpoints/meta_init.pt of a `metaaug train` run on the same dataset and split "
            "(e.g. metaaug train dataset.val_fraction=0 dataset.test_fraction=0.5)"
        )
    path = Path(str(node.checkpoint)).expanduser()
    # the stage `generate` and the API load with; it refuses a missing, damaged, foreign,
    # wrong-kind or non-finite (diverged) checkpoint
    saved = load_saved(path, "arms.gan.checkpoint", device, kinds=("meta_init",),
                       fix="point it at a run's checkpoints/meta_init.pt")  # fmt: skip
    if saved.meta_train_classes is None:
        raise UserError(
            f"'{path}' is not a meta_init.pt written by `metaaug train` (it names no "
            "meta-train classes); use a run's checkpoints/meta_init.pt"
        )
    run = saved.config
    for key in ("name", "image_size", "channels"):
        if run.dataset[key] != cfg.dataset[key]:
            raise UserError(
                f"the GAN in '{path}' was trained with dataset.{key}={run.dataset[key]}, this "
                f"run has {cfg.dataset[key]}; use the same dataset settings"
            )
    leaked = sorted(set(saved.meta_train_classes) & set(test_classes))
    if leaked:
        raise UserError(
            f"the GAN in '{path}' was meta-trained on {len(leaked)} of the episode classes "
            f"(e.g. '{leaked[0]}'); meta-train it on the classes fewshot trains on: metaaug "
            f"train dataset.val_fraction={cfg.dataset.val_fraction} "
            f"dataset.test_fraction={cfg.dataset.test_fraction} "
            f"dataset.split_by={build.split_by(cfg.dataset)} seed={cfg.seed}"
        )
    gan = saved.gan.train()  # adapted as `train` fine-tunes: in training mode
    steps = int(node.steps if node.steps is not None else run.finetune.steps)
    if cfg.fewshot.shots < conditioning(gan.generator).min_shots(adapting=steps > 0):
        raise UserError(
            f"the image-conditioned GAN adapts on pairs of shots but fewshot.shots="
            f"{cfg.fewshot.shots}; set arms.gan.steps=0 to transform the shot without adapting"
        )
    optimizer = build.optimizer(node.optimizer if node.optimizer is not None
                                else run.finetune.optimizer)  # fmt: skip
    term = saved.class_loss
    log.info("gan arm: %s initialization from %s, %d adaptation steps per class%s, %d images "
             "per class", run.meta_algo.name, path, steps,
             f" with its class term (gan.class_loss={term.weight:g})" if term else "",
             node.per_class)  # fmt: skip
    return GanArm(gan, build.adversarial(run, saved.class_loss), optimizer, steps,
                  node.per_class,
                  build.augment(run), build.precision(cfg, device, gan))  # fmt: skip


MANIFEST_KEYS = ("classes", "dataset", "image_size", "channels", "from_path",
                 "meta_train_classes")  # fmt: skip
CLASS_KEYS = ("class_name", "folder", "shot_rows")


def synthetic_folders(
    cfg: DictConfig, split: ClassSplit
) -> tuple[dict[str, Tensor], dict[str, list[int]]]:
    """The synthetic folders under `fewshot.synthetic_path` (each with the manifest.json that
    `metaaug train` writes) of meta-test classes: their images, and the rows of the shots each
    was generated from (those become the class's support in every episode)."""
    if cfg.fewshot.synthetic_path is None:
        raise UserError(
            "fewshot.arms has synthetic but fewshot.synthetic_path is not set; point it at a "
            "`metaaug train` run's synthetic/ folder (or a folder of several)"
        )
    root = Path(cfg.fewshot.synthetic_path).expanduser()
    manifests = sorted(root.rglob("manifest.json")) if root.is_dir() else []
    if not manifests:
        raise UserError(
            f"fewshot.synthetic_path='{root}' holds no manifest.json of a `metaaug train` "
            "synthetic folder; point it at a run's synthetic/ folder"
        )
    images: dict[str, Tensor] = {}
    fixed: dict[str, list[int]] = {}
    for path in manifests:
        try:
            info = json.loads(path.read_text())
            damage = "" if isinstance(info, dict) else f"a JSON {type(info).__name__}"
        except (OSError, ValueError) as err:
            damage = describe(err)
        if damage:
            raise UserError(
                f"'{path}' is damaged or not a metaaug manifest ({damage}); generate the images "
                "again with `metaaug train`"
            )
        check_complete(path, info)
        missing = [k for k in MANIFEST_KEYS if k not in info]
        if "classes" in info and not isinstance(info["classes"], list):
            missing.append("a list under classes")
        if missing:
            raise UserError(
                f"'{path}' lacks {', '.join(missing)} (written by an older metaaug or another "
                "tool); generate the images again with `metaaug train`"
            )
        ds = cfg.dataset
        if (info["dataset"], info["image_size"], info["channels"]) != (ds.name, ds.image_size,
                                                                        ds.channels):  # fmt: skip
            raise UserError(
                f"'{path}' holds {info['dataset']} images of size {info['image_size']} with "
                f"{info['channels']} channels, this run uses {ds.name}, {ds.image_size}, "
                f"{ds.channels}; use the same dataset settings"
            )
        episodes = episode_classes(cfg, split)
        leaked = sorted(set(info["meta_train_classes"]) & set(episodes))
        if leaked:
            raise UserError(
                f"the GAN behind '{path.parent}' was meta-trained on {len(leaked)} of the "
                f"episode classes (e.g. '{leaked[0]}'); generate with `metaaug train "
                f"dataset.val_fraction={ds.val_fraction} dataset.test_fraction="
                f"{ds.test_fraction} dataset.split_by={build.split_by(ds)} seed={cfg.seed}`"
            )
        for entry in info["classes"]:
            if any(k not in entry for k in CLASS_KEYS):
                raise UserError(
                    f"'{path}' lists a class without {', '.join(CLASS_KEYS)}; generate the "
                    "images again with `metaaug train`"
                )
            name = entry["class_name"]
            if info["from_path"] or name not in episodes:
                log.warning("synthetic images of '%s' (%s) are not of an episode class: unused",
                            name, path.parent)  # fmt: skip
                continue
            if name in images:
                raise UserError(
                    f"two synthetic folders under '{root}' hold class '{name}'; keep one"
                )
            # the PNGs are already foreground-bright: no inversion, whatever the dataset's
            images[name] = image_folder_flat(str(path.parent / entry["folder"]), ds.image_size,
                                             ds.channels, key="fewshot.synthetic_path")  # fmt: skip
            fixed[name] = list(entry["shot_rows"])
    log.info("synthetic arm: images of %d meta-test classes (%s)", len(images),
             ", ".join(sorted(images)))  # fmt: skip
    return images, fixed
