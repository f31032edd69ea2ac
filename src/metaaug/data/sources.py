"""Dataset loaders: each returns the class images as `{class name: [N, C, H, W] in [-1, 1]}`.

Every loader holds its whole dataset in memory as one tensor per class: few-shot tasks index
random classes and images on every meta-iteration, and the datasets this tool targets
(Omniglot, MNIST-like, a user's folder of a few thousand images) fit easily.
"""

from __future__ import annotations

import zipfile
from collections.abc import Callable
from pathlib import Path

import torch

from metaaug.data.images import (
    alpha_level,
    check_shape_args,
    decode,
    describe,
    expand_channels,
    image_files,
    resize_batch,
    stack_uint8,
)
from metaaug.errors import UserError

# Where torchvision-backed loaders look, and download to, when dataset.root is not set.
DEFAULT_ROOT = Path("~/.cache/metaaug/data")

# Omniglot sets in order of preference; the "small" sets are subsets of images_background.
_OMNIGLOT_FULL = ("images_background", "images_evaluation")
_OMNIGLOT_SMALL = ("images_background_small1", "images_background_small2")
_OMNIGLOT_LAYOUTS = (
    "images_background/ and/or images_evaluation/ (folders or .zip), "
    "images_background_small1/ or images_background_small2/ (folders or .zip), "
    "or torchvision's omniglot-py/images_background/"
)


def _sorted(classes: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {name: classes[name] for name in sorted(classes)}


def digits(image_size: int, channels: int = 1) -> dict[str, torch.Tensor]:
    """scikit-learn's bundled 8x8 digits (1,797 images, values 0..16): data with no download.

    Value 16 is full ink, so x / 8 - 1 already puts the strokes at +1 and the ground at -1.
    """
    from sklearn.datasets import load_digits

    check_shape_args(image_size, channels)
    bunch = load_digits()
    images = torch.from_numpy(bunch.images).float().div_(8.0).sub_(1.0).unsqueeze(1)
    labels = torch.from_numpy(bunch.target)
    return {
        str(k): expand_channels(resize_batch(images[labels == k], image_size), channels)
        for k in range(10)
    }


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
        where = f"dataset.root '{root}'" if root is not None else f"default root '{base}'"
        state = "does not exist" if not base.is_dir() else "holds no Omniglot set"
        raise UserError(
            f"{where} {state}; set dataset.root to a folder holding {_OMNIGLOT_LAYOUTS} "
            "(or dataset.download=true, which needs internet)"
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
    return _sorted(classes)


def _omniglot_sources(base: Path) -> list[Path]:
    """The set folders/zips to read under `base`, after the preference rules of `omniglot`."""

    def find(set_name: str) -> Path | None:
        for folder in (base, base / "omniglot-py"):
            if (folder / set_name).is_dir():
                return folder / set_name
            if (folder / f"{set_name}.zip").is_file():
                return folder / f"{set_name}.zip"
        return None

    found = {name: find(name) for name in _OMNIGLOT_FULL + _OMNIGLOT_SMALL}
    wanted = list(_OMNIGLOT_FULL)
    if found["images_background"] is None:
        wanted += _OMNIGLOT_SMALL
    return [path for name in wanted if (path := found[name]) is not None]


def _subfolders(folder: Path) -> list[Path]:
    """Sorted child folders, without hidden ones and macOS zip debris (__MACOSX)."""
    return sorted(
        p for p in folder.iterdir() if p.is_dir() and not p.name.startswith((".", "__MACOSX"))
    )


def _read_omniglot_folder(
    folder: Path, image_size: int, channels: int, invert: bool, background: int
) -> dict[str, torch.Tensor]:
    """`<set>/<alphabet>/<characterNN>/*.png` on disk."""
    classes: dict[str, torch.Tensor] = {}
    for alphabet in _subfolders(folder):
        for char in _subfolders(alphabet):
            files = image_files(char)
            if files:
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
            raise UserError(
                f"downloading Omniglot into '{base}' failed ({describe(err)}); "
                "set dataset.root to a local copy (e.g. images_background.zip) "
                "and dataset.download=false"
            ) from err


def _torchvision_classes(
    dataset_cls: type,
    label: str,
    root: str | None,
    image_size: int,
    channels: int,
    download: bool,
    rename: Callable[[str], str],
) -> dict[str, torch.Tensor]:
    """Train and test splits of an MNIST-like torchvision dataset merged, split by class."""
    check_shape_args(image_size, channels)
    base = Path(root).expanduser() if root is not None else DEFAULT_ROOT.expanduser()
    parts = []
    for train in (True, False):
        try:
            parts.append(dataset_cls(str(base), train=train, download=download))
        except Exception as err:
            if download:
                raise UserError(
                    f"downloading {label} into '{base}' failed ({describe(err)}); "
                    f"set dataset.root to a folder holding {label}/raw/ and "
                    "dataset.download=false"
                ) from err
            if not (base / label / "raw").is_dir():
                raise UserError(
                    f"{label} files not found under '{base}' (expected {base}/{label}/raw/); "
                    "set dataset.root to a folder holding them, or dataset.download=true "
                    "(downloads need internet)"
                ) from err
            raise UserError(
                f"cannot read {label} from '{base}/{label}/raw' ({describe(err)}); "
                "replace the missing or damaged files, or set dataset.download=true"
            ) from err
    data = torch.cat([p.data for p in parts])
    targets = torch.cat([torch.as_tensor(p.targets) for p in parts])
    classes = {}
    for index, name in enumerate(parts[0].classes):
        images = data[targets == index].float().div_(127.5).sub_(1.0).unsqueeze(1)
        classes[rename(name)] = expand_channels(resize_batch(images, image_size), channels)
    return _sorted(classes)


def mnist(
    root: str | None, image_size: int, channels: int = 1, download: bool = False
) -> dict[str, torch.Tensor]:
    """MNIST (70,000 images, train+test) with class names "0".."9"; white strokes already."""
    from torchvision.datasets import MNIST

    return _torchvision_classes(
        MNIST, "MNIST", root, image_size, channels, download, lambda n: n.split(" - ")[0]
    )


def fashion_mnist(
    root: str | None, image_size: int, channels: int = 1, download: bool = False
) -> dict[str, torch.Tensor]:
    """FashionMNIST (70,000 images) with torchvision's class names, e.g. "T-shirt/top"."""
    from torchvision.datasets import FashionMNIST

    return _torchvision_classes(
        FashionMNIST, "FashionMNIST", root, image_size, channels, download, lambda n: n
    )


def imagefolder(
    root: str, image_size: int, channels: int = 1, alpha_background: str | int = "white"
) -> dict[str, torch.Tensor]:
    """The user's own data, `<root>/<class>/*.png|jpg|jpeg|bmp`; images squashed to a square.

    No inversion: unlike the pen-stroke datasets there is no known foreground polarity.
    Class folders without images are skipped (a stray empty folder should not stop a run).
    Transparent pixels show `alpha_background` (white, black or a gray level 0-255).
    """
    check_shape_args(image_size, channels)
    background = alpha_level(alpha_background)
    base = Path(root).expanduser()
    if not base.is_dir():
        raise UserError(
            f"dataset.root '{root}' does not exist; "
            "set dataset.root to a folder holding <class>/*.png|jpg|jpeg|bmp"
        )
    classes = {}
    for folder in _subfolders(base):
        files = image_files(folder)
        if files:
            classes[folder.name] = stack_uint8(
                decode(f, image_size, channels, str(f), background=background) for f in files
            )
    if not classes:
        raise UserError(
            f"dataset.root '{root}' holds no class folders with images; "
            "put images in <root>/<class>/ with extension png, jpg, jpeg or bmp"
        )
    return _sorted(classes)


def image_folder_flat(
    path: str,
    image_size: int,
    channels: int = 1,
    invert: bool = False,
    *,
    key: str = "target.path",
    alpha_background: str | int = "white",
) -> torch.Tensor:
    """All images directly inside one folder, sorted by file name: the user's few-shot target.

    `key` is the config key the error messages name (the same loader serves other keys);
    transparent pixels show `alpha_background` (`dataset.alpha_background`).
    """
    check_shape_args(image_size, channels)
    background = alpha_level(alpha_background)
    folder = Path(path).expanduser()
    if not folder.is_dir():
        raise UserError(
            f"{key} '{path}' does not exist; set {key} to a folder of png/jpg/jpeg/bmp images"
        )
    files = image_files(folder)
    if not files:
        raise UserError(
            f"{key} '{path}' holds no png/jpg/jpeg/bmp images; "
            f"put the images directly in that folder or fix {key}"
        )
    return stack_uint8(decode(f, image_size, channels, str(f), invert, background) for f in files)
