"""Images on disk: PNG folders that torchvision's ImageFolder loads as is, and sample grids."""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from metaaug.errors import Diverged, UserError
from metaaug.io.atomic import staged_dir, too_long_to_stage, unwritable, write_text

MAX_NAME_BYTES = 200  # of a folder or checkpoint name made from a class name
# the files written beside the class folders (synthetic/, samples/)
BESIDE_CLASSES = ("manifest.json", "overview.png")


def folder_name(class_name: str) -> str:
    """A class name as one folder name (Omniglot's `Korean/character07` -> `Korean_character07`).

    ImageFolder takes only the first level under its root as classes, so no slashes; no
    leading or trailing dots either (`.` and `..` are no folders, `.x` a hidden one), and not
    the name of a file beside the classes (`manifest.json` -> `manifest.json_`). At most
    MAX_NAME_BYTES: a longer name keeps its start and ends in a hash of all of it (distinct
    names stay distinct), so that `.<name>.pt.XXXXXXXX.tmp` fits the 255 bytes of one name.
    """
    name = re.sub(r"[^\w.\-]+", "_", class_name).strip("_.") or "class"
    if name in BESIDE_CLASSES:  # a class folder beside the file of that name: keep both
        name += "_"
    encoded = name.encode()
    if len(encoded) <= MAX_NAME_BYTES:
        return name  # every name that fits is as it always was
    digest = hashlib.sha256(encoded).hexdigest()[:16]
    start = encoded[: MAX_NAME_BYTES - len(digest) - 1].decode(errors="ignore")  # whole letters
    return f"{start}_{digest}"


def class_folders(names: list[str]) -> dict[str, str]:
    """class name -> its folder name (`folder_name`), refused (UserError) where two classes
    would be written to one folder."""
    folders = {name: folder_name(name) for name in names}
    by_folder: dict[str, list[str]] = {}
    for name, folder in folders.items():
        by_folder.setdefault(folder, []).append(name)
    for folder, same in by_folder.items():
        if len(same) > 1:
            raise UserError(
                f"classes {same} share the folder name '{folder}' once written to disk; rename "
                "them so they differ in letters or digits"
            )
    return folders


def ensure_outputs_free(run_dir: Path, names: tuple[str, ...]) -> None:
    """Refuse a run directory that already holds one of a command's outputs (Hydra's own
    .hydra/ and log are expected there)."""
    for name in names:
        if (run_dir / name).exists():
            raise UserError(
                f"run directory '{run_dir}' already holds {name}; pick a new hydra.run.dir "
                "(metaaug never overwrites outputs)"
            )


def ensure_empty_dir(path: Path, what: str) -> None:
    """Refuse, before any work, a folder the images cannot go to: a non-empty one (existing
    outputs are never overwritten), a file, a symbolic link, a name too long to stage, or one
    under a place that cannot be written (the images are staged beside the folder, in its
    parent)."""
    if path.is_dir() and any(path.iterdir()):
        raise UserError(
            f"{what} '{path}' already exists and is not empty; choose another folder "
            f"or move the old one away (metaaug never overwrites outputs)"
        )
    if path.is_symlink():  # the staged folder would be renamed onto the link, not into it
        target = os.path.realpath(path)
        raise UserError(
            f"{what} '{path}' is a symbolic link to '{target}': metaaug writes the images "
            f"beside it and renames them into place, which a link cannot take; give the folder "
            f"itself: '{target}'"
        )
    problem = (
        too_long_to_stage(path)
        or unwritable(path.parent)
        or (None if path.is_dir() or not os.path.lexists(path) else "it is a file, not a folder")
    )
    if problem:
        raise UserError(f"{what} '{path}' cannot hold the images: {problem}; choose another folder")


def check_complete(manifest: Path, info: dict[str, Any]) -> None:
    """Refuse a synthetic set whose manifest (`info`, read from `manifest`) is not marked
    complete: its writing was interrupted, or an older metaaug wrote it."""
    if info.get("complete") is not True:
        raise UserError(
            f"'{manifest}' is not marked complete (its writing was interrupted, or an older "
            "metaaug wrote it); generate the images again with `metaaug train` or `generate`"
        )


def refuse_incomplete(folder: Path) -> None:
    """A folder of images that is a metaaug synthetic set (its manifest.json), or one class
    folder of one (listed in its parent's), must be marked complete; any other folder passes."""
    for manifest, own in ((folder / "manifest.json", True),
                          (folder.parent / "manifest.json", False)):  # fmt: skip
        try:
            info = json.loads(manifest.read_text())
        except (OSError, ValueError):
            continue  # none, or not a metaaug manifest: a folder of the user's own
        if not isinstance(info, dict) or not isinstance(info.get("classes"), list):
            continue
        folders = {c.get("folder") for c in info["classes"] if isinstance(c, dict)}
        if own or folder.name in folders:
            check_complete(manifest, info)
            return


def to_uint8(images: Tensor) -> np.ndarray:
    """[-1, 1] float [N, C, H, W] -> uint8 [N, H, W, C]."""
    x = ((images.detach().float().cpu().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return x.permute(0, 2, 3, 1).numpy()


def write_synthetic(
    sets: Mapping[str, Tensor],
    root: Path,
    manifest: dict[str, Any],
    per_class: Mapping[str, dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Write `root/<class>/NNNNNN.png` for every class of `sets` (class name -> images) and
    `root/manifest.json`: the run's `manifest` fields, and under `classes` one entry per
    class (its name, folder, count and its `per_class` fields) and `complete: true`. Returns
    the manifest.

    Everything is written into a temporary folder beside `root` that becomes `root` in one
    rename once the manifest is in it: a reader sees a complete set or none, and a failure
    (full disk, non-finite images) leaves nothing behind."""
    ensure_empty_dir(root, "synthetic output folder")
    folders = class_folders(list(sets))
    for name, images in sets.items():
        if not bool(torch.isfinite(images).all()):
            raise Diverged(f"the generated images of {name} are not finite; nothing was written")
    classes = []
    with staged_dir(root, "the synthetic images") as staging:
        for name, images in sets.items():
            cls_dir = staging / folders[name]
            cls_dir.mkdir()
            for i, arr in enumerate(to_uint8(images)):
                mode = "L" if arr.shape[2] == 1 else "RGB"
                Image.fromarray(arr.squeeze(2) if mode == "L" else arr, mode=mode).save(
                    cls_dir / f"{i:06d}.png"
                )
            extra = (per_class or {}).get(name, {})
            classes.append(
                {"class_name": name, "folder": cls_dir.name, "count": int(images.shape[0]),
                 **extra}
            )  # fmt: skip
        first = next(iter(sets.values()))
        full = {
            "count": sum(entry["count"] for entry in classes),
            "classes": classes,
            "image_size": int(first.shape[-1]),
            "channels": int(first.shape[1]),
            "format": "png, uint8, foreground bright",
            **manifest,
            "complete": True,  # readers refuse a set without it
        }
        write_text(staging / "manifest.json", json.dumps(full, indent=2) + "\n")
    return full


def grid(images: Tensor, nrow: int = 8, padding: int = 2) -> Tensor:
    """A [3, H, W] grid in [0, 1] of images in [-1, 1], `nrow` to a row with a black border
    of `padding` pixels (the layout of torchvision's make_grid; done here so that writing a
    PNG does not import torchvision, a second on every start)."""
    x = (images.detach().float().cpu().clamp(-1, 1) + 1) / 2
    if x.shape[1] == 1:
        x = x.expand(-1, 3, -1, -1)
    if x.shape[0] == 1:  # one image needs no border
        return x[0].clone()
    n, c, h, w = x.shape
    cols = min(nrow, n)
    rows = -(-n // cols)
    out = x.new_zeros(c, rows * (h + padding) + padding, cols * (w + padding) + padding)
    for i in range(n):
        top, left = (i // cols) * (h + padding) + padding, (i % cols) * (w + padding) + padding
        out[:, top : top + h, left : left + w] = x[i]
    return out


def save_grid(images: Tensor, path: Path, nrow: int = 8) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = grid(images, nrow).mul(255).add_(0.5).clamp_(0, 255).to(torch.uint8)
    Image.fromarray(pixels.permute(1, 2, 0).numpy()).save(path)
    return path
