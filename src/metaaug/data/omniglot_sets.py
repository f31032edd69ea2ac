"""Omniglot (Lake et al. 2015) from a local copy, its zips read in place, or downloaded by
torchvision: `{Alphabet/characterNN: [20, C, H, W] in [-1, 1]}`."""

from __future__ import annotations

import zipfile
from pathlib import Path

import torch

from metaaug.data.images import (
    DEFAULT_ROOT,
    alpha_level,
    check_shape_args,
    decode,
    describe,
    image_files,
    sorted_classes,
    stack_uint8,
    subfolders,
)
from metaaug.errors import BadValue, UserError

# Omniglot sets in order of preference; the "small" sets are subsets of images_background.
_OMNIGLOT_FULL = ("images_background", "images_evaluation")
_OMNIGLOT_SMALL = ("images_background_small1", "images_background_small2")
_OMNIGLOT_LAYOUTS = (
    "images_background/ and/or images_evaluation/ (folders or .zip), "
    "images_background_small1/ or images_background_small2/ (folders or .zip), "
    "or torchvision's omniglot-py/images_background/"
)


def omniglot(
    root: str | None,
    image_size: int,
    channels: int = 1,
    invert: bool = True,
    download: bool = False,
    alpha_background: str | int = "white",
) -> dict[str, torch.Tensor]:
    """Omniglot from a local copy, zips read in place; class names like `Korean/character07`.

    Looks in `root` and in `root/omniglot-py` (torchvision's download layout) for the sets
    images_background, images_evaluation, images_background_small1, images_background_small2,
    each as a folder or as `<set>.zip`. Rules, so no image is counted twice:
    - a folder wins over a zip of the same set (an extracted copy is what the user edits);
    - when the full images_background set is found, the small sets are ignored, because they
      are subsets of it; otherwise every small set found is merged;
    - images_evaluation (alphabets disjoint from the background set) is always merged;
    - should two sets still hold the same class name, the one read first (order above) wins.
    The PNGs are black strokes on white; `invert=True` makes the strokes +1 on a -1 ground.
    Transparent pixels show `alpha_background` (white, black or a gray level), before inverting.
    With nothing found and `download=True`, torchvision downloads both full sets into root
    (`~/.cache/metaaug/data` when root is None).
    """
    check_shape_args(image_size, channels)
    background = alpha_level(alpha_background)
    base = Path(root).expanduser() if root is not None else DEFAULT_ROOT.expanduser()
    sources = _omniglot_sources(base)
    if not sources and download:
        _download_omniglot(base)
        sources = _omniglot_sources(base)
    if not sources:
        where = f"{{root}} '{root}'" if root is not None else f"default root '{base}'"
        state = "does not exist" if not base.is_dir() else "holds no Omniglot set"
        raise BadValue(
            f"{where} {state}; set {{root}} to a folder holding {_OMNIGLOT_LAYOUTS} "
            "(or {download}=true, which needs internet)"
        )
    classes: dict[str, torch.Tensor] = {}
    for source in sources:
        read = _read_omniglot_zip if source.suffix == ".zip" else _read_omniglot_folder
        for name, images in read(source, image_size, channels, invert, background).items():
            classes.setdefault(name, images)
    if not classes:
        raise UserError(
            f"found {', '.join(str(s) for s in sources)} but no <alphabet>/<character>/*.png "
            "images inside; replace it with an intact Omniglot copy"
        )
    return sorted_classes(classes)


def _omniglot_sources(base: Path) -> list[Path]:
    """The set folders/zips to read under `base`, after the preference rules of `omniglot`."""

    def find(set_name: str) -> Path | None:
        for folder in (base, base / "omniglot-py"):
            if (folder / set_name).is_dir():
                return folder / set_name
            if (folder / f"{set_name}.zip").is_file():
                return folder / f"{set_name}.zip"
        return None

    full = find("images_background") is not None
    wanted = _OMNIGLOT_FULL if full else _OMNIGLOT_FULL + _OMNIGLOT_SMALL
    return [path for name in wanted if (path := find(name)) is not None]


def _read_omniglot_folder(
    folder: Path, image_size: int, channels: int, invert: bool, background: int
) -> dict[str, torch.Tensor]:
    """`<set>/<alphabet>/<characterNN>/*.png` on disk."""
    classes: dict[str, torch.Tensor] = {}
    for alphabet in subfolders(folder):
        for char in subfolders(alphabet):
            if files := image_files(char):
                classes[f"{alphabet.name}/{char.name}"] = stack_uint8(
                    decode(f, image_size, channels, str(f), invert, background) for f in files
                )
    return classes


def _read_omniglot_zip(
    path: Path, image_size: int, channels: int, invert: bool, background: int
) -> dict[str, torch.Tensor]:
    """`<set>.zip` holding `<set>/<alphabet>/<characterNN>/*.png`, read member by member."""
    members: dict[str, list[str]] = {}
    try:
        with zipfile.ZipFile(path) as archive:
            for member in archive.namelist():
                parts = member.split("/")
                if (
                    len(parts) == 4
                    and parts[3].lower().endswith(".png")
                    and not any(p.startswith((".", "__MACOSX")) for p in parts)
                ):
                    members.setdefault(f"{parts[1]}/{parts[2]}", []).append(member)
            return {
                name: stack_uint8(
                    decode(archive.read(m), image_size, channels, f"{path}:{m}", invert, background)
                    for m in sorted(files)
                )
                for name, files in members.items()
            }
    except (zipfile.BadZipFile, OSError) as err:
        raise UserError(
            f"cannot read zip '{path}' ({describe(err)}); "
            "replace it with an intact copy or extract it"
        ) from err


def _download_omniglot(base: Path) -> None:
    from torchvision.datasets import Omniglot

    for background in (True, False):
        try:
            Omniglot(str(base), background=background, download=True)
        except Exception as err:  # network errors come in many types; all mean the same here
            raise BadValue(
                f"downloading Omniglot into '{base}' failed ({describe(err)}); "
                "set {root} to a local copy (e.g. images_background.zip) "
                "and {download}=false"
            ) from err
