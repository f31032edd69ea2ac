"""Decoding and resizing shared by every loader, so all datasets meet one image convention.

The convention: float32 tensors in [-1, 1], shape [N, C, H, W] with H = W = image_size, and for
pen-stroke data (digits, MNIST-like, Omniglot) the strokes bright (+1) on a dark (-1) ground.
Models, metrics and the synthetic writer rely on it, so it is enforced here and nowhere else.
"""

from __future__ import annotations

import hashlib
import io
import logging
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from metaaug.errors import BadValue, UserError

log = logging.getLogger(__name__)

# Where the loaders look for a dataset, and download to, when dataset.root is not set.
DEFAULT_ROOT = Path("~/.cache/metaaug/data")

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp")


def describe(err: BaseException, limit: int = 200) -> str:
    """An exception as `Type: message` on one line (UserError messages must be single lines)."""
    text = " ".join(f"{type(err).__name__}: {err}".split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def check_shape_args(image_size: int, channels: int) -> None:
    """Reject sizes the models cannot use before any file is read."""
    if not isinstance(image_size, int) or image_size < 1:
        raise BadValue(
            f"{{image_size}}={image_size!r} is not a positive integer; "
            "set {image_size} to e.g. 28 or 32"
        )
    if channels not in (1, 3):
        raise BadValue(f"{{channels}}={channels!r} is not supported; set {{channels}} to 1 or 3")


def image_files(folder: Path) -> list[Path]:
    """The images directly inside `folder` (by extension, any case; hidden files such as macOS
    '._x.png' skipped), sorted by file name for determinism. A link named like an image whose
    target is gone is skipped with a warning: a dataset of links that lost some images."""
    named = [p for p in folder.iterdir() if p.name.lower().endswith(IMAGE_EXTENSIONS)]
    named = [p for p in named if not p.name.startswith(".")]
    broken = sorted(p.name for p in named if p.is_symlink() and not p.exists())
    if broken:
        log.warning("%s: %d link(s) to a missing image skipped (%s)", folder, len(broken),
                    ", ".join(broken[:3]) + (", ..." if len(broken) > 3 else ""))  # fmt: skip
    return sorted((p for p in named if p.is_file()), key=lambda p: p.name)


# how far past [-1, 1] images may range (interpolation overshoot) before they are taken for
# another scale, such as [0, 255]
RANGE_SLACK = 1.5


def off_scale(images: torch.Tensor) -> str | None:
    """`images`' range as "[lo, hi]" where it is not that of images in [-1, 1], else None."""
    if not len(images):
        return None
    low, high = float(images.min()), float(images.max())
    return f"[{low:.3g}, {high:.3g}]" if low < -RANGE_SLACK or high > RANGE_SLACK else None


def image_key(image: torch.Tensor) -> bytes:
    """An image's exact values as a short key: equal keys, one image (a copy of it)."""
    values = image.detach().cpu().contiguous().numpy().tobytes()
    return hashlib.blake2b(values, digest_size=16).digest()


def alpha_level(value: object, key: str = "dataset.alpha_background") -> int:
    """`dataset.alpha_background` (white, black or a gray level 0-255) as a gray level."""
    named = {"white": 255, "black": 0}
    if isinstance(value, str) and value.strip().lower() in named:
        return named[value.strip().lower()]
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 255:
        return value
    raise UserError(
        f"{key}={value!r} is not a background; set {key} to white, black or a gray level 0-255"
    )


def _gray_peak(img: Image.Image) -> float:
    """The full-scale value of a high-bit-depth grayscale image: what maps to white."""
    if img.mode == "F":
        return 1.0  # float images hold intensities in [0, 1]
    if img.mode.startswith("I;16") or img.format == "PNG":
        return 65535.0  # PNG stores at most 16 bits a sample (older Pillow opens them as 'I')
    return float(2**31 - 1)  # 'I' is signed 32-bit


def _to_8bit(img: Image.Image) -> Image.Image:
    """I;16 / I / F grayscale scaled by its bit depth to L (LA when the PNG marks a gray level
    transparent). Pillow's own convert("L") clips at 255, which turns 16-bit images white."""
    raw = np.asarray(img)
    level = np.clip(raw.astype(np.float64) / _gray_peak(img), 0.0, 1.0)
    gray = Image.fromarray(np.rint(level * 255.0).astype(np.uint8), "L")
    transparent = img.info.get("transparency")
    if isinstance(transparent, int | float) and img.mode != "F":
        alpha = np.where(raw == transparent, 0, 255).astype(np.uint8)
        gray = Image.merge("LA", (gray, Image.fromarray(alpha, "L")))
    return gray


def _flatten(img: Image.Image, channels: int, background: int) -> Image.Image:
    """Any PIL mode as L (channels=1) or RGB (3); transparency composited onto `background`.

    Converting RGBA straight to L/RGB drops alpha, so a shape drawn only in alpha (RGB all 0)
    turned all black: compositing keeps it.
    """
    if img.mode == "F" or img.mode.startswith("I"):
        img = _to_8bit(img)
    if img.mode in ("P", "L", "RGB") and "transparency" in img.info:
        img = img.convert("RGBA")  # palette or tRNS transparency becomes an alpha channel
    if {"A", "a"} & set(img.getbands()):
        rgba = img.convert("RGBA")
        ground = Image.new("RGBA", rgba.size, (background, background, background, 255))
        img = Image.alpha_composite(ground, rgba)
    return img.convert("L" if channels == 1 else "RGB")


def decode(
    source: Path | bytes,
    image_size: int,
    channels: int,
    name: str,
    invert: bool = False,
    background: int = 255,
) -> np.ndarray:
    """One image file (a path or the bytes of a zip member) as uint8 [H, W, C] of size image_size.

    16-bit and float grayscale are scaled by their bit depth; transparent pixels show
    `background` (a gray level, from `dataset.alpha_background`) before any `invert`.
    PIL's resize with BILINEAR scales its kernel support with the reduction factor, so a
    105 -> 28 downscale is antialiased (no aliasing of thin pen strokes). `name` is what the
    error message shows: the user must be able to find the broken file.
    """
    try:
        with Image.open(io.BytesIO(source) if isinstance(source, bytes) else source) as img:
            img = _flatten(img, channels, background)
            if img.size != (image_size, image_size):
                img = img.resize((image_size, image_size), Image.Resampling.BILINEAR)
            arr = np.asarray(img, dtype=np.uint8)
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as err:
        raise UserError(
            f"cannot read image '{name}' ({describe(err)}); "
            "replace or delete the file (expected PNG, JPEG or BMP)"
        ) from err
    if invert:
        arr = 255 - arr
    return arr[:, :, None] if arr.ndim == 2 else arr


def stack_uint8(arrays: Iterable[np.ndarray]) -> torch.Tensor:
    """uint8 [H, W, C] images -> float32 [N, C, H, W] in [-1, 1]."""
    batch = torch.from_numpy(np.stack(list(arrays)))
    return batch.permute(0, 3, 1, 2).float().div_(127.5).sub_(1.0).contiguous()


def resize_batch(images: torch.Tensor, image_size: int, chunk: int = 8192) -> torch.Tensor:
    """Antialiased bilinear resize of a [N, C, H, W] batch in [-1, 1]; chunked to bound memory.

    Bilinear weights are convex, so the output stays in [-1, 1] (clamped against rounding).
    """
    if images.shape[-2:] == (image_size, image_size):
        return images
    parts = [
        F.interpolate(
            images[i : i + chunk].float(),
            size=(image_size, image_size),
            mode="bilinear",
            align_corners=False,
            antialias=True,
        )
        for i in range(0, images.shape[0], chunk)
    ]
    return torch.cat(parts).clamp_(-1.0, 1.0)


def expand_channels(images: torch.Tensor, channels: int) -> torch.Tensor:
    """Grayscale [N, 1, H, W] -> [N, channels, H, W] by repeating the plane."""
    return images if channels == images.shape[1] else images.repeat(1, channels, 1, 1)


def sorted_classes(classes: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The classes in name order: every loader's, so a split depends on names alone."""
    return {name: classes[name] for name in sorted(classes)}


def subfolders(folder: Path) -> list[Path]:
    """Sorted child folders, without hidden ones and macOS zip debris (__MACOSX)."""
    return sorted(
        p for p in folder.iterdir() if p.is_dir() and not p.name.startswith((".", "__MACOSX"))
    )
