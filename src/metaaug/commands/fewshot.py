"""`metaaug fewshot`: does augmentation help few-shot classification?

Every learner is trained on every arm's version of the same episodes (meta-test classes only),
so each arm is compared with `none` episode by episode: a paired test, whose confidence
interval is far tighter than the two arms' own intervals suggest.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import multiprocessing
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import hydra
import numpy as np
import torch
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf
from torch import Tensor
from torch.utils.tensorboard import SummaryWriter
from tqdm import tqdm

from metaaug import hardware, validate
from metaaug.commands import build
from metaaug.data.sources import image_folder_flat
from metaaug.errors import UserError, exits_on_user_error
from metaaug.fewshot.arms import Arm, GanArm, SyntheticArm, combined
from metaaug.fewshot.episodes import EpisodeSampler
from metaaug.fewshot.learners import Learner
from metaaug.fewshot.stats import mean_ci, paired_comparison
from metaaug.io.checkpoint import load_checked
from metaaug.io.images import ensure_outputs_free
from metaaug.io.rundir import run_dir_lock
from metaaug.io.tensorboard import log_hparams
from metaaug.models.conditioning import conditioning

OUTPUTS = ("fewshot.md", "fewshot.csv", "fewshot.json", "tensorboard")
REFERENCE = "none"

log = logging.getLogger("metaaug.fewshot")


def _names(cfg: DictConfig, key: str, known: DictConfig) -> list[str]:
    names = [str(n) for n in cfg.fewshot[key]]
    unknown = [n for n in names if n not in known and not (key == "arms" and "+" in n)]
    if unknown or not names:
        raise UserError(
            f"fewshot.{key}={names}: {', '.join(unknown) or 'empty'}; choose from "
            f"{', '.join(known)}"
        )
    if key == "arms":
        _check_combinations(names, known)
    return names


def _check_combinations(names: list[str], known: DictConfig) -> None:
    """An arm `a+b` adds what `a` and `b` add, made by them as listed arms of the run."""
    for name in (n for n in names if "+" in n):
        parts = name.split("+")
        missing = [p for p in parts if p not in names]
        if missing or len(set(parts)) < len(parts) or not all(p in known for p in parts):
            raise UserError(
                f"fewshot.arms has {name}: a combination of distinct arms, each also listed "
                f"on its own (missing: {', '.join(missing) or 'none'}); e.g. "
                "fewshot.arms=[none,classic,gan,classic+gan]"
            )


def _workers(workers: int, device: torch.device) -> int:
    if workers < 1:
        raise UserError(f"fewshot.workers={workers}: use 1 (one process) or more")
    if workers > 1 and device.type != "cpu":
        raise UserError(
            f"fewshot.workers={workers} forks CPU processes, but hardware.device is {device}; "
            "set fewshot.workers=1 on a GPU (or hardware=cpu)"
        )
    if workers > 1 and "fork" not in multiprocessing.get_all_start_methods():
        raise UserError(
            f"fewshot.workers={workers} needs processes started by fork, which this platform "
            "lacks; set fewshot.workers=1"
        )
    return workers


def _train_episodes(cfg: DictConfig, classes, split) -> EpisodeSampler:
    """Episodes of the meta-train classes, for what is meta-learned here (MAML's
    initialization, the learned augmentation); never the meta-test classes."""
    f = cfg.fewshot
    return EpisodeSampler(classes, split.train, int(f.ways), int(f.shots), int(f.queries),
                          int(cfg.seed) + 1, split="meta-train")  # fmt: skip


def _learners(cfg: DictConfig, names: list[str], classes, split, device) -> list[Learner]:
    out = []
    for name in names:
        node = cfg.learners[name]
        if name == "protonet":
            features, info = build.domain_features(cfg, classes, split, device)
            log.info("protonet backbone: held-out accuracy %.3f on meta-train classes",
                     info["accuracy"])  # fmt: skip
            out.append(build.instantiate(node, features=features))
        elif name == "maml":
            t0 = time.perf_counter()
            out.append(build.instantiate(node, episodes=_train_episodes(cfg, classes, split),
                                         channels=int(cfg.dataset.channels),
                                         image_size=int(cfg.dataset.image_size), seed=int(cfg.seed),
                                         device=str(device)))  # fmt: skip
            log.info("maml learner: meta-trained in %.0f s", time.perf_counter() - t0)
        else:
            out.append(build.instantiate(node, device=str(device)))
    return out


def _gan_arm(cfg: DictConfig, test_classes: list[str], device: torch.device) -> GanArm:
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
    # refuses a missing, damaged, foreign, wrong-kind or non-finite (diverged) checkpoint
    ckpt = load_checked(path, "arms.gan.checkpoint", "meta_init",
                        "point it at a run's checkpoints/meta_init.pt")  # fmt: skip
    if "classes" not in ckpt or "config" not in ckpt:
        raise UserError(
            f"'{path}' is not a meta_init.pt written by `metaaug train` (it names no "
            "meta-train classes); use a run's checkpoints/meta_init.pt"
        )
    run = OmegaConf.create(ckpt["config"])
    for key in ("name", "image_size", "channels"):
        if run.dataset[key] != cfg.dataset[key]:
            raise UserError(
                f"the GAN in '{path}' was trained with dataset.{key}={run.dataset[key]}, this "
                f"run has {cfg.dataset[key]}; use the same dataset settings"
            )
    leaked = sorted(set(ckpt["classes"]["train"]) & set(test_classes))
    if leaked:
        raise UserError(
            f"the GAN in '{path}' was meta-trained on {len(leaked)} of the episode classes "
            f"(e.g. '{leaked[0]}'); meta-train it on the classes fewshot trains on: metaaug "
            f"train dataset.val_fraction={cfg.dataset.val_fraction} "
            f"dataset.test_fraction={cfg.dataset.test_fraction} seed={cfg.seed}"
        )
    gan = build.gan(run, device)
    gan.load_state_dict(ckpt["gan"])
    steps = int(node.steps if node.steps is not None else run.finetune.steps)
    if cfg.fewshot.shots < conditioning(gan.generator).min_shots(adapting=steps > 0):
        raise UserError(
            f"the image-conditioned GAN adapts on pairs of shots but fewshot.shots="
            f"{cfg.fewshot.shots}; set arms.gan.steps=0 to transform the shot without adapting"
        )
    optimizer = build.optimizer(node.optimizer if node.optimizer is not None
                                else run.finetune.optimizer)  # fmt: skip
    log.info("gan arm: %s initialization from %s, %d adaptation steps per class, %d images "
             "per class", ckpt.get("meta_algo"), path, steps, node.per_class)  # fmt: skip
    return GanArm(gan, build.adversarial(run), optimizer, steps, int(node.per_class),
                  build.augment(run), build.precision(cfg, device, gan))  # fmt: skip


MANIFEST_KEYS = ("classes", "dataset", "image_size", "channels", "from_path",
                 "meta_train_classes")  # fmt: skip
CLASS_KEYS = ("class_name", "folder", "shot_rows")


def _synthetic(cfg: DictConfig, split) -> tuple[dict[str, Tensor], dict[str, list[int]]]:
    """The synthetic folders under `fewshot.synthetic_path` (each with the manifest.json that
    `metaaug train` writes) of meta-test classes: their images, and the rows of the shots each
    was generated from (those become the class's support in every episode)."""
    if cfg.fewshot.synthetic_path is None:
        raise UserError(
            "fewshot.arms has synthetic but fewshot.synthetic_path is not set; point it at a "
            "`metaaug train` run's synthetic/ folder (or a folder of several)"
        )
    root = Path(str(cfg.fewshot.synthetic_path)).expanduser()
    manifests = sorted(root.rglob("manifest.json")) if root.is_dir() else []
    if not manifests:
        raise UserError(
            f"fewshot.synthetic_path='{root}' holds no manifest.json of a `metaaug train` "
            "synthetic folder; point it at a run's synthetic/ folder"
        )
    images: dict[str, Tensor] = {}
    fixed: dict[str, list[int]] = {}
    for path in manifests:
        info = json.loads(path.read_text())
        if info.get("complete") is not True:
            raise UserError(
                f"'{path}' is not marked complete (its writing was interrupted, or an older "
                "metaaug wrote it); generate the images again with `metaaug train`"
            )
        missing = [k for k in MANIFEST_KEYS if k not in info]
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
        leaked = sorted(set(info["meta_train_classes"]) & set(split.test))
        if leaked:
            raise UserError(
                f"the GAN behind '{path.parent}' was meta-trained on {len(leaked)} of the "
                f"episode classes (e.g. '{leaked[0]}'); generate with `metaaug train "
                f"dataset.val_fraction={ds.val_fraction} dataset.test_fraction="
                f"{ds.test_fraction} seed={cfg.seed}`"
            )
        for entry in info["classes"]:
            if any(k not in entry for k in CLASS_KEYS):
                raise UserError(
                    f"'{path}' lists a class without {', '.join(CLASS_KEYS)}; generate the "
                    "images again with `metaaug train`"
                )
            name = entry["class_name"]
            if info["from_path"] or name not in split.test:
                log.warning("synthetic images of '%s' (%s) are not of a meta-test class: unused",
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


def _arm(cfg: DictConfig, name: str, classes, split, device: torch.device) -> Arm:
    if name == "gan":
        return _gan_arm(cfg, list(split.test), device)
    if name == "learned":
        t0 = time.perf_counter()
        arm = build.instantiate(cfg.arms.learned, episodes=_train_episodes(cfg, classes, split),
                                seed=int(cfg.seed))  # fmt: skip
        shown = ", ".join(f"{k}={v.item():.3g}" for k, v in arm.augment.magnitudes().items())
        log.info("learned arm: %s (meta-learned in %.0f s)", shown, time.perf_counter() - t0)
        return arm
    return build.instantiate(cfg.arms[name])


def _arm_rng(seed: int, episode: int, arm: int) -> torch.Generator:
    return torch.Generator().manual_seed((seed * 1_000_003 + episode) * 101 + arm)


def _learner_rng(seed: int, episode: int) -> torch.Generator:
    # the same for every arm: a learner's own randomness does not differ between arms
    return torch.Generator().manual_seed((seed * 1_000_003 + episode) * 101 + 100)


def episode_accuracies(
    sampler: EpisodeSampler,
    arms: dict[str, Arm | None],
    learners: dict[str, Learner],
    seed: int,
    i: int,
) -> dict[str, dict[str, float]]:
    """Query accuracy of every learner x arm on episode `i`: a function of the seeds alone."""
    episode = sampler.episode(i)
    acc: dict[str, dict[str, float]] = {ln: {} for ln in learners}
    made: dict[str, tuple[Tensor, Tensor]] = {}
    for a, (arm_name, arm) in enumerate(arms.items()):
        if arm is None:  # `a+b`: its arms' images of this episode (listed before it or after)
            parts = arm_name.split("+")
            for p in parts:
                if p not in made:
                    made[p] = arms[p](episode, _arm_rng(seed, i, list(arms).index(p)))
            made[arm_name] = combined([made[p] for p in parts], len(episode.support))
        elif arm_name not in made:
            made[arm_name] = arm(episode, _arm_rng(seed, i, a))
        images, targets = made[arm_name]
        for learner_name, learner in learners.items():
            acc[learner_name][arm_name] = learner.accuracy(
                images, targets, episode.query, episode.query_labels, _learner_rng(seed, i)
            )
    return acc


# What forked workers inherit instead of unpickling it: the episode sampler, arms, learners
# and seed of the evaluation in progress.
_WORK: tuple | None = None


def _worker_start() -> None:
    # one thread per process: `workers` processes share the machine's cores
    torch.set_num_threads(1)


def _worker_episode(i: int) -> dict[str, dict[str, float]]:
    assert _WORK is not None, "a fewshot worker started outside evaluate()"
    return episode_accuracies(*_WORK, i)


def evaluate(
    sampler: EpisodeSampler,
    arms: dict[str, Arm | None],
    learners: dict[str, Learner],
    episodes: int,
    seed: int,
    progress: bool = False,
    workers: int = 1,
) -> dict[str, dict[str, np.ndarray]]:
    """Per-episode query accuracy [episodes] of every learner x arm, on identical episodes.

    With `workers` > 1 the episodes are shared among that many forked processes of one thread
    each; every episode depends on its seeds alone, so the numbers are those of a one-thread
    run in a single process.
    """
    global _WORK
    acc = {ln: {an: np.zeros(episodes) for an in arms} for ln in learners}
    if workers > 1:
        _WORK = (sampler, arms, learners, seed)
        context = multiprocessing.get_context("fork")
        pool = ProcessPoolExecutor(workers, mp_context=context, initializer=_worker_start)
        results = pool.map(_worker_episode, range(episodes))
    else:
        pool = None
        results = (episode_accuracies(sampler, arms, learners, seed, i) for i in range(episodes))
    try:
        for i, one in enumerate(tqdm(results, desc="episodes", total=episodes,
                                     disable=not progress, leave=False)):  # fmt: skip
            for learner_name, per_arm in one.items():
                for arm_name, value in per_arm.items():
                    acc[learner_name][arm_name][i] = value
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)
            _WORK = None
    return acc


def summarize(acc: dict[str, dict[str, np.ndarray]], confidence: float) -> list[dict]:
    """One row per learner x arm: accuracy +- CI, and the paired difference to `none`."""
    rows = []
    for learner, per_arm in acc.items():
        for arm, values in per_arm.items():
            ci = mean_ci(values, confidence)
            row = {"learner": learner, "arm": arm, "episodes": ci.n, "accuracy": ci.mean,
                   "ci": ci.half_width, "diff": None, "diff_ci": None, "p_value": None}  # fmt: skip
            if arm != REFERENCE and REFERENCE in per_arm:
                paired = paired_comparison(values, per_arm[REFERENCE], confidence)
                row.update(diff=paired.diff.mean, diff_ci=paired.diff.half_width,
                           p_value=paired.p_value)  # fmt: skip
            rows.append(row)
    return rows


def markdown(rows: list[dict], cfg: DictConfig) -> str:
    f = cfg.fewshot
    pct = round(100 * float(f.confidence))
    lines = [
        f"# {f.ways}-way {f.shots}-shot on {cfg.dataset.name} ({rows[0]['episodes']} episodes, "
        f"{f.queries} queries per class, seed {cfg.seed})",
        "",
        f"Accuracy in % +- its {pct}% confidence interval; the difference to `{REFERENCE}` is "
        "paired (the same episodes), with its interval and the two-sided p-value.",
        "",
        f"| learner | arm | accuracy | vs {REFERENCE} | p |",
        "|---|---|---|---|---|",
    ]
    for r in rows:
        diff = "" if r["diff"] is None else f"{100 * r['diff']:+.2f} ± {100 * r['diff_ci']:.2f}"
        p = "" if r["p_value"] is None else f"{r['p_value']:.2g}"
        lines.append(
            f"| {r['learner']} | {r['arm']} | {100 * r['accuracy']:.2f} ± {100 * r['ci']:.2f} "
            f"| {diff} | {p} |"
        )
    return "\n".join(lines) + "\n"


def to_csv(rows: list[dict]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows({k: "" if v is None else v for k, v in r.items()} for r in rows)
    return out.getvalue()


def run(cfg: DictConfig) -> float:
    validate.check(cfg, "fewshot")  # every value's type and range, and the data folders
    run_dir = Path(HydraConfig.get().runtime.output_dir)
    ensure_outputs_free(run_dir, OUTPUTS)
    f = cfg.fewshot
    arm_names = _names(cfg, "arms", cfg.arms)
    learner_names = _names(cfg, "learners", cfg.learners)
    # by default the first learner with the last arm (the candidate, after `none`)
    goal = (str(f.objective.learner or learner_names[0]), str(f.objective.arm or arm_names[-1]))
    if goal[0] not in learner_names or goal[1] not in arm_names:
        raise UserError(
            f"fewshot.objective={goal[0]}/{goal[1]} is not among the learners {learner_names} "
            f"and arms {arm_names}; set fewshot.objective.learner and .arm to ones that run"
        )
    if int(f.episodes) < 2:
        raise UserError(f"fewshot.episodes={f.episodes}: a confidence interval needs at least 2")
    device = hardware.setup(
        cfg.hardware.device,
        cfg.hardware.threads,
        cfg.hardware.deterministic,
        cfg.seed,
        reuse_memory=bool(cfg.hardware.reuse_memory),
    )
    workers = _workers(int(f.workers), device)
    classes, split = build.classes_and_split(cfg)
    synthetic, fixed = ({}, {}) if "synthetic" not in arm_names else _synthetic(cfg, split)
    sampler = EpisodeSampler(
        classes, split.test, int(f.ways), int(f.shots), int(f.queries), int(cfg.seed),
        fixed_support=fixed,
    )  # fmt: skip
    log.info("%d-way %d-shot episodes from %d meta-test classes (backbone: %d meta-train)",
             f.ways, f.shots, len(split.test), len(split.train))  # fmt: skip
    learners = dict(zip(learner_names, _learners(cfg, learner_names, classes, split, device),
                        strict=True))  # fmt: skip
    # None stands for a combination `a+b`, made from its listed arms' images per episode
    arms: dict[str, Arm | None] = {
        name: None if "+" in name
        else SyntheticArm(synthetic, int(cfg.arms.synthetic.per_class)) if name == "synthetic"
        else _arm(cfg, name, classes, split, device)
        for name in arm_names
    }  # fmt: skip

    t0 = time.perf_counter()
    progress = sys.stderr.isatty() if cfg.progress == "auto" else bool(cfg.progress)
    acc = evaluate(sampler, arms, learners, int(f.episodes), int(cfg.seed), progress, workers)
    rows = summarize(acc, float(f.confidence))
    elapsed = time.perf_counter() - t0

    writer = SummaryWriter(str(run_dir / "tensorboard"))
    for r in rows:
        writer.add_scalar(f"fewshot/{r['learner']}/{r['arm']}/accuracy", r["accuracy"], 0)
        if r["diff"] is not None:
            writer.add_scalar(f"fewshot/{r['learner']}/{r['arm']}/diff_vs_none", r["diff"], 0)
    value = float(acc[goal[0]][goal[1]].mean())
    log_hparams(writer, OmegaConf.to_container(cfg, resolve=True), {"accuracy": value})
    writer.close()
    (run_dir / "fewshot.md").write_text(markdown(rows, cfg))
    (run_dir / "fewshot.csv").write_text(to_csv(rows))
    report = {
        "objective": {"learner": goal[0], "arm": goal[1], "accuracy": value},
        "rows": rows,
        "classes": {"train": list(split.train), "test": list(split.test)},
        "per_episode": {ln: {an: v.tolist() for an, v in pa.items()} for ln, pa in acc.items()},
        "seconds": elapsed,
    }
    (run_dir / "fewshot.json").write_text(json.dumps(report, indent=2) + "\n")
    for r in rows:
        log.info("%s / %s: %.2f%% ± %.2f", r["learner"], r["arm"], 100 * r["accuracy"],
                 100 * r["ci"])  # fmt: skip
    log.info("wrote %s (%.0f s)", run_dir / "fewshot.md", elapsed)
    return value


@hydra.main(config_path="../conf", config_name="fewshot", version_base="1.3")
@exits_on_user_error
def main(cfg: DictConfig) -> float:
    with run_dir_lock(HydraConfig.get().runtime.output_dir):  # one process per run directory
        return run(cfg)
