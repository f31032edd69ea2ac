"""Dataset loaders: each returns the class images as `{class name: [N, C, H, W] in [-1, 1]}`.

Every loader holds its whole dataset in memory as one tensor per class: few-shot tasks index
random classes and images on every meta-iteration, and the datasets this tool targets
(Omniglot, MNIST-like, a user's folder of a few thousand images) fit easily. Omniglot's
loader, the longest, is `metaaug.data.omniglot_sets`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch

from metaaug.data.images import (
    DEFAULT_ROOT,
    alpha_level,
    check_shape_args,
    decode,
    describe,
    expand_channels,
    image_files,
    resize_batch,
    sorted_classes,
    stack_uint8,
    subfolders,
)
from metaaug.data.omniglot_sets import omniglot  # noqa: F401  (dataset=omniglot's _target_ of saved runs)
from metaaug.errors import BadValue, UserError


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
                raise BadValue(
                    f"downloading {label} into '{base}' failed ({describe(err)}); "
                    f"set {{root}} to a folder holding {label}/raw/ and "
                    "{download}=false"
                ) from err
            if not (base / label / "raw").is_dir():
                raise BadValue(
                    f"{label} files not found under '{base}' (expected {base}/{label}/raw/); "
                    "set {root} to a folder holding them, or {download}=true "
                    "(downloads need internet)"
                ) from err
            raise BadValue(
                f"cannot read {label} from '{base}/{label}/raw' ({describe(err)}); "
                "replace the missing or damaged files, or set {download}=true"
            ) from err
    data = torch.cat([p.data for p in parts])
    targets = torch.cat([torch.as_tensor(p.targets) for p in parts])
    classes = {}
    for index, name in enumerate(parts[0].classes):
        images = data[targets == index].float().div_(127.5).sub_(1.0).unsqueeze(1)
        classes[rename(name)] = expand_channels(resize_batch(images, image_size), channels)
    return sorted_classes(classes)


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

    A folder of `root` that holds no images but class folders that do is a group (an alphabet,
    a product line): its classes are named `<group>/<class>`, which `dataset.split_by=group`
    splits by. No inversion: unlike the pen-stroke datasets there is no known foreground
    polarity. Folders without images are skipped (a stray empty folder should not stop a run).
    Transparent pixels show `alpha_background` (white, black or a gray level 0-255).
    """
    check_shape_args(image_size, channels)
    background = alpha_level(alpha_background)
    base = Path(root).expanduser()
    if not base.is_dir():
        raise BadValue(
            f"{{root}} '{root}' does not exist; "
            "set {root} to a folder holding <class>/*.png|jpg|jpeg|bmp"
        )

    def read(files: list[Path]) -> torch.Tensor:
        return stack_uint8(decode(f, image_size, channels, str(f), background=background)
                           for f in files)  # fmt: skip

    classes = {}
    for folder in subfolders(base):
        if files := image_files(folder):
            classes[folder.name] = read(files)
            continue
        for member in subfolders(folder):  # a group of class folders
            if files := image_files(member):
                classes[f"{folder.name}/{member.name}"] = read(files)
    if not classes:
        raise BadValue(
            f"{{root}} '{root}' holds no class folders with images; put images in "
            "<root>/<class>/ (or <root>/<group>/<class>/) as png, jpg, jpeg or bmp"
        )
    return sorted_classes(classes)


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
