"""Decoding and resizing shared by every loader, so all datasets meet one image convention.

The convention: float32 tensors in [-1, 1], shape [N, C, H, W] with H = W = image_size, and for
pen-stroke data (digits, MNIST-like, Omniglot) the strokes bright (+1) on a dark (-1) ground.
Models, metrics and the synthetic writer rely on it, so it is enforced here and nowhere else.
"""

from __future__ import annotations

import io
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from metaaug.errors import UserError

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp")


def describe(err: BaseException, limit: int = 200) -> str:
    """An exception as `Type: message` on one line (UserError messages must be single lines)."""
    text = " ".join(f"{type(err).__name__}: {err}".split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def check_shape_args(image_size: int, channels: int) -> None:
    """Reject sizes the models cannot use before any file is read."""
    if not isinstance(image_size, int) or image_size < 1:
        raise UserError(
            f"dataset.image_size={image_size!r} is not a positive integer; "
            "set dataset.image_size to e.g. 28 or 32"
        )
    if channels not in (1, 3):
        raise UserError(
            f"dataset.channels={channels!r} is not supported; set dataset.channels to 1 or 3"
        )


def is_image_file(path: Path) -> bool:
    """Image files by extension, any case; hidden files (macOS '._x.png') are skipped."""
    return path.is_file() and not path.name.startswith(".") and _has_image_suffix(path.name)


def _has_image_suffix(name: str) -> bool:
    return name.lower().endswith(IMAGE_EXTENSIONS)


def image_files(folder: Path) -> list[Path]:
    """The images directly inside `folder`, sorted by file name for determinism."""
    return sorted((p for p in folder.iterdir() if is_image_file(p)), key=lambda p: p.name)


def decode(
    source: Path | bytes, image_size: int, channels: int, name: str, invert: bool = False
) -> np.ndarray:
    """One image file (a path or the bytes of a zip member) as uint8 [H, W, C] of size image_size.

    PIL's resize with BILINEAR scales its kernel support with the reduction factor, so a
    105 -> 28 downscale is antialiased (no aliasing of thin pen strokes). `name` is what the
    error message shows: the user must be able to find the broken file.
    """
    try:
        with Image.open(io.BytesIO(source) if isinstance(source, bytes) else source) as img:
            img = img.convert("L" if channels == 1 else "RGB")
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
