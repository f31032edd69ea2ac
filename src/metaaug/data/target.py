"""The few-shot target: the `shots` images the GAN adapts to, and the held-out rest.

The held-out images are the reference set for FID/KID and the memorization score; they must
never reach the generator, which is why the target is chosen here, once, from a seed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import torch

from metaaug.data.sources import image_folder_flat
from metaaug.data.split import ClassSplit
from metaaug.errors import UserError, nearest


@dataclass(frozen=True, eq=False)
class Target:
    """The target class: `shots` [K, C, H, W] for adaptation, `heldout` [M, C, H, W] (M >= 0)."""

    class_name: str
    shots: torch.Tensor
    heldout: torch.Tensor
    shot_rows: tuple[int, ...] = ()  # rows of the shots in the dataset's class (none for a path)


def _choose(
    images: torch.Tensor, shots: int, seed: int
) -> tuple[torch.Tensor, torch.Tensor, tuple[int, ...]]:
    """A seeded choice of `shots` rows, the other rows (both in their original order), and the
    chosen row numbers."""
    perm = torch.randperm(images.shape[0], generator=torch.Generator().manual_seed(seed))
    chosen = torch.zeros(images.shape[0], dtype=torch.bool)
    chosen[perm[:shots]] = True
    rows = tuple(int(i) for i in chosen.nonzero().flatten())
    return images[chosen], images[~chosen], rows


def class_target(name: str, images: torch.Tensor, shots: int, seed: int) -> Target:
    """The target made of a dataset class: a seeded choice of `shots` images, the rest held out.

    Every class the tool adapts to (the target, the meta-val classes of validation, the classes
    the fidelity classifier holds out) is cut this way, so the same seed gives the same shots.
    """
    shot_images, heldout, rows = _choose(images, shots, seed)
    return Target(class_name=name, shots=shot_images, heldout=heldout, shot_rows=rows)


def select_target(
    classes: Mapping[str, torch.Tensor],
    split: ClassSplit,
    *,
    class_name: str | int | None,
    path: str | None,
    shots: int,
    seed: int,
    image_size: int,
    channels: int,
    invert: bool = False,
) -> Target:
    """Pick the target from the user's folder (`path`) or from the meta-test classes.

    With `path`, all its images count (shots == count leaves no held-out images, and metrics
    against held-out images are then unavailable). A dataset class must be a meta-test class
    (a meta-train/val class would leak into the initialization) with more than `shots` images.
    """
    if shots < 1:
        raise UserError(f"target.shots={shots} must be at least 1; set target.shots to e.g. 5")
    if path is not None:
        images = image_folder_flat(path, image_size, channels, invert)
        if images.shape[0] < shots:
            raise UserError(
                f"target.path '{path}' holds {images.shape[0]} images but target.shots={shots}; "
                "add images or lower target.shots"
            )
        shot_images, heldout, _ = _choose(images, shots, seed)
        name = str(class_name) if class_name is not None else Path(path).expanduser().resolve().name
        return Target(class_name=name, shots=shot_images, heldout=heldout)

    if not split.test:
        raise UserError("the class split has no meta-test classes; raise the test fraction")
    name = split.test[0] if class_name is None else str(class_name)
    if name in split.train or name in split.val:
        part = "meta-train" if name in split.train else "meta-val"
        raise UserError(
            f"target.class_name '{name}' is a {part} class, so the meta-initialization has "
            f"seen it (it would leak); pick a meta-test class, e.g. "
            f"{', '.join(nearest(name, split.test, n=3))}"
        )
    if name not in split.test or name not in classes:
        raise UserError(
            f"target.class_name '{name}' is not a meta-test class; nearest valid names: "
            f"{', '.join(nearest(name, split.test))}"
        )
    images = classes[name]
    if images.shape[0] <= shots:
        raise UserError(
            f"target class '{name}' has {images.shape[0]} images but target.shots={shots} "
            "leaves none held out for evaluation; lower target.shots or pick another class"
        )
    return class_target(name, images, shots, seed)
