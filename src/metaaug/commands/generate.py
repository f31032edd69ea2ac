"""`metaaug generate`: sample a saved generator into `<out>/<class>/000000.png ...` and
`<out>/manifest.json`.

A finetuned checkpoint (`checkpoints/finetuned/<class>.pt`) is sampled as it is; a
`meta_init.pt` is first adapted to the images of `shots=DIR` with its run's fine-tune
settings (`config/saved.py`). Seeded: the same command gives the same PNGs.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig
from torch import Tensor

from metaaug.config import build, keys, validate
from metaaug.config.saved import (
    Saved,
    adapt_saved,
    check_memory,
    class_judge,
    load_saved,
    read_shots,
    sample_saved,
)
from metaaug.errors import UserError, exits_on_user_error
from metaaug.io.rundir import run_dir_lock
from metaaug.io.synthetic import ensure_empty_dir, write_synthetic
from metaaug.pipeline.generate import noise_seed

log = logging.getLogger("metaaug.generate")


def _generate(
    cfg: DictConfig, saved: Saved, steps: int
) -> tuple[dict[str, Tensor], dict[str, dict], dict[str, Tensor]]:
    """class -> images, class -> its manifest entry, and class -> the shots its images were
    drawn for (a meta_init adapted `steps` steps to them)."""
    n, seed = cfg.num_images, cfg.seed
    if saved.kind == "finetuned":
        if cfg.shots is not None or cfg.steps is not None:
            raise UserError(
                f"checkpoint='{saved.path}' is a finetuned GAN, already adapted to its "
                f"class's shots, and is sampled as it is; drop shots= and steps=, or point "
                "checkpoint at the run's checkpoints/meta_init.pt to adapt to your shots"
            )
        name = str(cfg.class_name) if cfg.class_name is not None else str(saved.class_name)
        images = sample_saved(saved, n, seed=seed, batch_size=cfg.batch_size)
        entry = {"source_checkpoint": saved.path, "target": saved.class_name}
        if saved.shot_rows is not None:
            entry["shot_rows"] = list(saved.shot_rows)
        return {name: images}, {name: entry}, {name: saved.shots}
    if cfg.shots is None:
        raise UserError(
            f"checkpoint='{saved.path}' is a meta-learned initialization: give it shots=DIR, a "
            "folder of images of the new class (or of class folders), to adapt to, or point "
            "checkpoint at a run's checkpoints/finetuned/<class>.pt"
        )
    sets, entries = {}, {}
    given = read_shots(saved, str(cfg.shots), cfg.class_name, steps)
    check_memory(saved, cfg.num_images, len(given))  # all classes are held: before adapting
    for name, shots in given.items():
        t0 = time.perf_counter()
        adapted = adapt_saved(saved, shots, steps=cfg.steps, seed=seed,
                              hardware_cfg=cfg.hardware, class_name=name)  # fmt: skip
        sets[name] = sample_saved(adapted, n, seed=seed, batch_size=cfg.batch_size)
        log.info("%s: adapted to %d shots in %.1f s", name, shots.shape[0],
                 time.perf_counter() - t0)  # fmt: skip
        entries[name] = {"source_checkpoint": saved.path, "shots": shots.shape[0],
                         "shot_rows": []}  # fmt: skip
    return sets, entries, given


def run(cfg: DictConfig) -> dict:
    validate.check_keys(cfg, "generate")  # every value's type and range, before any work
    run_dir = Path(HydraConfig.get().runtime.output_dir)
    out = Path(str(cfg.out)).expanduser() if cfg.out is not None else run_dir / "synthetic"
    ensure_empty_dir(out, "out")
    device = build.device(cfg)
    saved = load_saved(str(cfg.checkpoint), "checkpoint", device)
    check_memory(saved, cfg.num_images)  # the image size is the checkpoint's run's
    run_cfg = saved.config
    steps = saved.steps if saved.kind == "finetuned" else (
        run_cfg.finetune.steps if cfg.steps is None else cfg.steps)  # fmt: skip
    log.info("%s checkpoint %s: gan=%s, dataset=%s, %dx%d", saved.kind, saved.path,
             run_cfg.gan.name, run_cfg.dataset.name, run_cfg.dataset.image_size,
             run_cfg.dataset.image_size)  # fmt: skip
    judge = class_judge(saved, device) if cfg.filter else None  # refused before any work
    sets, entries, shots = _generate(cfg, saved, steps)
    kept = judge.cut(sets, shots) if judge is not None else None
    if not sets:  # the judge kept no image of any class: nothing to write
        raise UserError(
            f"filter=true kept none of the {sum(kept['drawn'].values())} images drawn (the run's "
            "backbone put each nearer another class than its own shots); draw more with "
            "num_images or set filter=false"
        )
    meta_train = saved.meta_train_classes
    manifest = write_synthetic(
        sets, out,
        {"checkpoint": saved.path, "checkpoint_kind": saved.kind, "seed": cfg.seed,
         "noise_seed": noise_seed(cfg.seed), "steps": steps, "filter": kept,
         "adapted_here": saved.kind == "meta_init" and steps > 0,
         "config_hash": saved.config_hash, "meta_algo": run_cfg.meta_algo.name,
         "gan": run_cfg.gan.name, "dataset": run_cfg.dataset.name,
         # what `metaaug fewshot fewshot.synthetic_path=...` reads: images from your own shots
         # (from_path) are never used as a dataset class's
         "from_path": saved.kind == "meta_init" or run_cfg.target.path is not None,
         **({"meta_train_classes": list(meta_train)} if meta_train is not None else {})},
        {name: entries[name] for name in sets},
    )  # fmt: skip
    log.info("wrote %d images of %d class(es) to %s", manifest["count"], len(sets), out)
    return manifest


@hydra.main(config_path="../conf", config_name="generate", version_base="1.3")
@exits_on_user_error(keys=keys.COMMON)
def main(cfg: DictConfig) -> None:
    with run_dir_lock(HydraConfig.get().runtime.output_dir):  # one process per run directory
        run(cfg)
