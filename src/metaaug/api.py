"""The Python API, for notebooks: load a GAN that `metaaug train` saved, adapt it to new shots,
sample it, measure images. The same code as `metaaug generate` and `metaaug evaluate`.

Example:
    >>> import metaaug
    >>> gan = metaaug.load("outputs/train/<run>/checkpoints/meta_init.pt")
    >>> shots = metaaug.read_images("my_shots/", gan)      # [K, C, H, W] in [-1, 1]
    >>> fake = metaaug.sample(metaaug.adapt(gan, shots), 200)
    >>> metaaug.evaluate(real, fake, shots=shots)["fid"]

Images are float tensors [N, C, H, W] in [-1, 1] (foreground bright), the format of every
metaaug dataset; `read_images` reads a folder into one. A wrong argument is refused at the
call in one line naming it and the fix (`api_checks`): TypeError for a wrong type, UserError
for a wrong value (a negative count, images in [0, 255], NaN pixels, an empty tensor).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import Tensor

from metaaug import api_checks as check
from metaaug.config import build
from metaaug.config.saved import Saved, adapt_saved, load_saved, sample_saved
from metaaug.data.sources import image_folder_flat

log = logging.getLogger("metaaug.api")

__all__ = ["Saved", "adapt", "evaluate", "load", "read_images", "sample"]


def load(path: str | Path, device: str | torch.device = "cpu") -> Saved:
    """The GAN of a run's `checkpoints/finetuned/<class>.pt` (adapted, with its shots) or
    `checkpoints/meta_init.pt` (the initialization), rebuilt from the run's config.

    `gan.gan` is the torch module pair, `gan.config` the run's config, `gan.kind` says which
    file it was."""
    return load_saved(check.path(path, "path"), "path", check.device(device))


def read_images(
    folder: str | Path,
    gan: Saved | None = None,
    *,
    image_size: int | None = None,
    channels: int | None = None,
) -> Tensor:
    """The images directly in `folder` (sorted by name), at `gan`'s image size and channels
    (or the ones given), read as its dataset's files are (polarity, `alpha_background`)."""
    check.path(folder, "folder")
    if gan is not None:
        check.saved_gan(gan, ", or the sizes as read_images(folder, image_size=..., channels=...)")
    ds = gan.config.dataset if gan is not None else None
    if (image_size is None or channels is None) and ds is None:
        raise ValueError("give a loaded gan, or image_size and channels")
    # the dataset's way of reading its files (polarity, transparent pixels), as generate's
    fmt = build.image_format(ds) if ds is not None else {}
    size = int(image_size if image_size is not None else fmt["image_size"])
    chans = int(channels if channels is not None else fmt["channels"])
    return image_folder_flat(
        str(folder), size, chans, fmt.get("invert", False), key="folder",
        alpha_background=fmt.get("alpha_background", "white"),
    )  # fmt: skip


def sample(gan: Saved, n: int, shots: Tensor | None = None, seed: int = 0) -> Tensor:
    """`n` images of `gan` on the CPU, drawn with noise seed `seed` + 2 (a finetuned checkpoint
    at its run's seed gives that run's synthetic images). An image-conditioned (DAGAN)
    generator transforms `shots`, by default the ones it was adapted to."""
    check.saved_gan(gan)
    given = None if shots is None else check.images(shots, "shots")
    return sample_saved(gan, check.count(n, "n"), seed=check.count(seed, "seed"), shots=given)


def adapt(
    gan: Saved,
    shots: Tensor,
    steps: int | None = None,
    lr: float | None = None,
    seed: int = 0,
) -> Saved:
    """A new GAN: a copy of `gan` adapted to `shots` [K, C, H, W] in [-1, 1] with its run's
    fine-tune (optimizer, loss, augmentation, batch size), for `steps` rounds (default: the
    run's finetune.steps) at learning rate `lr` (default: the run's). `gan` is unchanged."""
    check.saved_gan(gan)
    shots = check.images(shots, "shots").float()
    steps = None if steps is None else check.count(steps, "steps")
    return adapt_saved(gan, shots, steps=steps, lr=lr, seed=check.count(seed, "seed"))


def evaluate(
    real: Tensor,
    fake: Tensor,
    shots: Tensor | None = None,
    dataset: str = "digits",
    *,
    metric: str = "domain",
    class_name: str | int = "images",
    seed: int = 0,
    overrides: Sequence[str] = (),
) -> dict[str, float]:
    """The metrics `metaaug evaluate` reports for one class: fid, kid, is, precision, recall,
    memorization (with `shots`), fidelity and ceiling, diversity; nan where unavailable (the
    reason is logged). `dataset` names the related classes behind metric=domain (their
    classifier is trained once, then cached); `class_name` a dataset class is held out of it,
    as `metaaug train target.class_name=...` holds it out. `overrides` are config overrides of
    `metaaug evaluate`, e.g. ["metric.weights_path=/path/to/weights.pth"], other than the keys
    set by the arguments (real, fake, shots, class_name, dataset, metric, seed)."""
    from metaaug.config.evaluate import ClassImages, evaluate_images

    real, fake = check.images(real, "real"), check.images(fake, "fake")
    shots = None if shots is None else check.images(shots, "shots")
    name = check.class_name(class_name)  # 7 names the class '7', as class_name=7 does
    extra = check.overrides(overrides)
    one = ClassImages(name, real.float().cpu(), fake.float().cpu(),
                      None if shots is None else shots.float().cpu())  # fmt: skip
    names = [f"dataset={dataset}", f"metric={metric}", f"seed={seed}", *extra]
    report = evaluate_images([one], names)
    (result,) = report["classes"]
    for key, reason in result["unavailable"].items():
        log.info("%s unavailable: %s", key, reason)
    return dict(result["results"])
