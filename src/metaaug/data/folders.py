"""Image folders as classes: a folder of images (one class) or a folder of class folders (one
class each), the layout `metaaug train` writes to synthetic/ and reads from target.path."""

from __future__ import annotations

import logging
from pathlib import Path

from torch import Tensor

from metaaug.data.images import image_files
from metaaug.data.sources import image_folder_flat
from metaaug.errors import UserError, nearest

log = logging.getLogger(__name__)


def class_folders(path: str | Path, key: str) -> dict[str, Path] | None:
    """The class folders (name -> folder, sorted) of `path` when it holds no images itself
    but subfolders that do; None when it holds images itself (one class). One line
    (UserError) for a path that is missing, not a folder, or holds no images at either level."""
    folder = Path(path).expanduser()
    if not folder.exists():
        raise UserError(f"{key}='{path}' does not exist; point {key} at a folder of images")
    if not folder.is_dir():
        raise UserError(f"{key}='{path}' is a file, not a folder; point {key} at a folder")
    subfolders = {p.name: p for p in sorted(folder.iterdir()) if p.is_dir() and image_files(p)}
    if image_files(folder):
        if subfolders:  # a stray image beside class folders makes the folder one class
            log.warning(
                "%s='%s' holds images itself, so it is read as one class; its folders of "
                "images are not read (%s)", key, path, ", ".join(subfolders),
            )  # fmt: skip
        return None
    if not subfolders:
        raise UserError(
            f"{key}='{path}' holds no png/jpg/jpeg/bmp images, neither directly nor in class "
            "folders; put the images in it or in one folder per class"
        )
    return subfolders


def read_classes(
    path: str | Path,
    key: str,
    *,
    image_size: int,
    channels: int,
    invert: bool = False,
    alpha_background: str | int = "white",
    class_name: str | None = None,
) -> dict[str, Tensor]:
    """class name -> images [N, C, S, S] in [-1, 1] of `path`: its images as one class (named
    `class_name`, else after the folder), or its class folders, each one class (`class_name`
    then picks one of them)."""
    folders = class_folders(path, key)

    def read(folder: Path) -> Tensor:
        return image_folder_flat(str(folder), image_size, channels, invert, key=key,
                                 alpha_background=alpha_background)  # fmt: skip

    if folders is None:
        folder = Path(path).expanduser()
        return {class_name or folder.resolve().name: read(folder)}
    if class_name is not None:
        if class_name not in folders:
            raise UserError(
                f"{key}='{path}' has no class folder '{class_name}'; its classes: "
                f"{', '.join(nearest(class_name, folders))}"
            )
        folders = {class_name: folders[class_name]}
    return {name: read(folder) for name, folder in folders.items()}
