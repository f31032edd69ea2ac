"""The few-shot target: the `shots` images the GAN adapts to, and the held-out rest.

The held-out images are the reference set for FID/KID and the memorization score; they must
never reach the generator, which is why the target is chosen here, once, from a seed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from metaaug.data.folders import class_folders, read_classes
from metaaug.data.split import ClassSplit
from metaaug.errors import BadValue, UserError, nearest


@dataclass(frozen=True, eq=False)
class Target:
    """The target class: `shots` [K, C, H, W] for adaptation, `heldout` [M, C, H, W] (M >= 0)."""

    class_name: str
    shots: torch.Tensor
    heldout: torch.Tensor
    shot_rows: tuple[int, ...] = ()  # rows of the shots in the dataset's class (none for a path)


@dataclass(frozen=True)
class Data:
    """The dataset's classes and split, the targets, and every meta-val and meta-test class
    cut into shots and held-out images the same way (`references`: what validation adapts to
    and what the fidelity classifier holds out)."""

    classes: dict[str, torch.Tensor]
    split: ClassSplit
    targets: list[Target]
    references: dict[str, Target]


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


def _check_shots(shots: int) -> None:
    if shots < 1:
        raise BadValue(f"{{shots}}={shots} must be at least 1; set {{shots}} to e.g. 5")


def _folder_target(name: str, images: torch.Tensor, shots: int, seed: int, where: str) -> Target:
    """A target of the user's own images: `shots` of them chosen by the seed, the rest held out
    (shots == count leaves none, and metrics against held-out images are then unavailable)."""
    if images.shape[0] < shots:
        raise BadValue(
            f"{where} holds {images.shape[0]} images but {{shots}}={shots}; "
            "add images or lower {shots}"
        )
    shot_images, heldout, _ = _choose(images, shots, seed)
    return Target(class_name=name, shots=shot_images, heldout=heldout)


def path_targets(
    path: str,
    *,
    class_name: str | int | None,
    shots: int,
    seed: int,
    image_size: int,
    channels: int,
    invert: bool = False,
    alpha_background: str | int = "white",
) -> list[Target]:
    """The targets in the user's folder `path`: the images directly in it (one target, named
    `class_name` or after the folder), or else one target per subfolder holding images (a
    user with 5 images of each of 20 new classes gets 20 targets)."""
    _check_shots(shots)
    many = class_folders(path, "target.path")
    if many and class_name is not None:
        raise BadValue(
            f"{{path}} '{path}' holds class folders, each named after its folder, "
            f"so {{class_name}}={class_name} has nothing to name; drop it"
        )
    classes = read_classes(path, "target.path", image_size=image_size, channels=channels,
                           invert=invert, alpha_background=alpha_background,
                           class_name=None if class_name is None else str(class_name))  # fmt: skip
    return [
        _folder_target(name, images, shots, seed,
                       f"{{path}} class folder '{many[name]}'" if many else f"{{path}} '{path}'")
        for name, images in classes.items()
    ]  # fmt: skip


def sample_names(names: Sequence[str], n: int, seed: int) -> list[str]:
    """`n` of `names` drawn with `seed`, in their given order: a count of targets is a sample
    of the meta-test classes (the first N in sorted order would be the same few characters of
    one alphabet for every seed), and the same sample for every arm of a run."""
    perm = torch.randperm(len(names), generator=torch.Generator().manual_seed(seed))
    return [names[i] for i in sorted(perm[:n].tolist())]


def target_names(
    split: ClassSplit,
    *,
    class_name: str | int | None,
    many: int | str | Sequence[Any] | None,
    seed: int = 0,
) -> list[str]:
    """The meta-test classes to adapt to: `many` (`target.classes`: a count N drawn with
    `seed`, "all", or a list of names) or else the one `class_name` (default: the first
    meta-test class). A count of 0 gives none: a run that meta-trains and validates on
    meta-val classes and never touches a meta-test class (what a search runs)."""
    if not split.test:
        raise UserError("the class split has no meta-test classes; raise the test fraction")
    if many is None:
        return [split.test[0] if class_name is None else str(class_name)]
    if class_name is not None:
        raise BadValue(
            f"both {{class_name}}={class_name} and {{classes}}={many} are set; "
            "keep one ({classes}=[a,b] names several)"
        )
    if isinstance(many, str) and many != "all" and not many.isdigit():
        raise BadValue(
            f"{{classes}}={many!r} is not a count, 'all' or a list; "
            "use e.g. {classes}=10, {classes}=all or {classes}=[a,b]"
        )
    if many == "all":
        return list(split.test)
    if isinstance(many, int | str):
        n = int(many)
        if not 0 <= n <= len(split.test):
            raise BadValue(
                f"{{classes}}={n} but the split has {len(split.test)} meta-test classes; "
                f"use 0..{len(split.test)} (or all), or raise {{test_fraction}}"
            )
        return sample_names(split.test, n, seed)  # 0: no target (a search on meta-val)
    names = [str(name) for name in many]
    if not names:
        raise BadValue("{classes}=[] names no class; name some, or set {classes}=0 for none")
    if len(set(names)) != len(names):
        raise BadValue(f"{{classes}}={names} must name each class once; fix the list")
    return names


def select_targets(
    classes: Mapping[str, torch.Tensor],
    split: ClassSplit,
    *,
    class_name: str | int | None,
    many: int | str | Sequence[Any] | None = None,
    path: str | None,
    shots: int,
    seed: int,
    image_size: int,
    channels: int,
    invert: bool = False,
    alpha_background: str | int = "white",
) -> list[Target]:
    """Pick the targets from the user's folder (`path`) or from the meta-test classes.

    A dataset class must be a meta-test class (a meta-train/val class would leak into the
    initialization) with more than `shots` images.
    """
    _check_shots(shots)
    if path is not None:
        if many is not None:
            raise BadValue(
                f"{{classes}}={many} picks dataset classes but {{path}} is set; drop "
                "{classes} (a {path} of class folders gives one target per folder)"
            )
        return path_targets(
            path, class_name=class_name, shots=shots, seed=seed, image_size=image_size,
            channels=channels, invert=invert, alpha_background=alpha_background,
        )  # fmt: skip
    out = []
    for name in target_names(split, class_name=class_name, many=many, seed=seed):
        if name in split.train or name in split.val:
            part = "meta-train" if name in split.train else "meta-val"
            raise UserError(
                f"target class '{name}' is a {part} class, so the meta-initialization has "
                f"seen it (it would leak); pick a meta-test class, e.g. "
                f"{', '.join(nearest(name, split.test, n=3))}"
            )
        if name not in split.test or name not in classes:
            raise UserError(
                f"target class '{name}' is not a meta-test class; nearest valid names: "
                f"{', '.join(nearest(name, split.test))}"
            )
        images = classes[name]
        if images.shape[0] <= shots:
            raise BadValue(
                f"target class '{name}' has {images.shape[0]} images but {{shots}}={shots} "
                "leaves none held out for evaluation; lower {shots} or pick another class"
            )
        out.append(class_target(name, images, shots, seed))
    return out
