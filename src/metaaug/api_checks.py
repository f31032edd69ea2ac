"""The argument checks of the Python API (`metaaug.api`): one per kind of argument, shared by
every API function, so that a notebook's wrong argument is refused at the call, in one line
naming the argument and the fix, rather than deep inside (an AttributeError, a KeyError) or
not at all (a negative count, pixels in [0, 255] trained on).

A wrong type raises TypeError, a wrong value of the right type UserError (as the rest of
metaaug does for values it cannot work with).
"""

from __future__ import annotations

import operator
import os
from collections.abc import Sequence

import torch
from torch import Tensor

from metaaug.config.saved import Saved
from metaaug.data.images import off_scale
from metaaug.errors import UserError

# the keys of `metaaug evaluate` the API sets from its own arguments
EVALUATE_ARGUMENTS = ("real", "fake", "shots", "class_name", "dataset", "metric", "seed")


def _kind(value: object) -> str:
    return type(value).__name__


def saved_gan(gan: object, also: str = "") -> Saved:
    """`gan`, refused unless it is a GAN from `metaaug.load` (or `adapt`); `also` names
    another way the caller accepts."""
    if not isinstance(gan, Saved):
        raise TypeError(
            f"gan is a {_kind(gan)}: give a GAN from metaaug.api.load (gan = "
            f"metaaug.load('<run>/checkpoints/meta_init.pt')){also}"
        )
    return gan


def path(value: object, name: str) -> str | os.PathLike:
    """`value`, refused unless it is a path (a str or a pathlib.Path)."""
    if isinstance(value, (str, os.PathLike)):
        return value
    hint = " (it already holds images: pass it on as it is)" if isinstance(value, Tensor) else ""
    raise TypeError(f"{name} is a {_kind(value)}{hint}: give a path, a str or a pathlib.Path")


def images(value: object, name: str) -> Tensor:
    """`value`, refused unless it is images as every metaaug dataset holds them: a non-empty
    float tensor [N, C, H, W], finite, in [-1, 1]."""
    if not isinstance(value, Tensor):
        hint = ("; read a folder into one with metaaug.read_images(folder, gan)"
                if isinstance(value, (str, os.PathLike))
                else " (torch.as_tensor(x) converts an array)")  # fmt: skip
        raise TypeError(
            f"{name} is a {_kind(value)}: give a float tensor [N, C, H, W] in [-1, 1]{hint}"
        )
    if value.ndim != 4:
        raise UserError(
            f"{name} has shape {tuple(value.shape)}: give images [N, C, H, W] "
            "(x.unsqueeze(0) for one image)"
        )
    if not value.is_floating_point():
        raise UserError(
            f"{name} is a {value.dtype} tensor: give floats in [-1, 1]; rescale them "
            "(x.float() / 127.5 - 1)"
        )
    if len(value) == 0:
        raise UserError(f"{name} holds no images (shape {tuple(value.shape)}); give at least one")
    bad = int((~torch.isfinite(value)).sum())
    if bad:  # NaN slips through the range check below (NaN comparisons are false)
        raise UserError(
            f"{name} holds {bad} NaN or infinite value(s); give finite images in [-1, 1]"
        )
    if (scale := off_scale(value)) is not None:
        raise UserError(
            f"{name} ranges over {scale} but images are floats in [-1, 1]; rescale them "
            "(x / 127.5 - 1)"
        )
    return value


def count(value: object, name: str) -> int:
    """`value` as an int, refused unless it is a whole number (not a bool) of at least 0."""
    try:
        if isinstance(value, bool):
            raise TypeError
        number = operator.index(value)  # type: ignore[arg-type]
    except TypeError:
        raise TypeError(
            f"{name}={value!r} is a {_kind(value)}: give a whole number, e.g. {name}=2"
        ) from None
    if number < 0:
        raise UserError(f"{name}={number} is negative; give 0 or more")
    return number


def device(value: object) -> torch.device:
    """`value` as a torch device metaaug runs on here (the CPU, or a visible CUDA GPU)."""
    if not isinstance(value, (str, torch.device)):
        raise TypeError(f"device is a {_kind(value)}: give device='cpu' or 'cuda'")
    try:
        dev = torch.device(value)
    except RuntimeError:
        dev = None
    if dev is None or dev.type not in ("cpu", "cuda"):
        raise UserError(f"device={str(value)!r} is not known; use device='cpu' or 'cuda'")
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise UserError(f"device={str(value)!r} but no CUDA device is visible; use device='cpu'")
    if dev.type == "cuda" and (dev.index or 0) >= torch.cuda.device_count():
        raise UserError(
            f"device={str(value)!r} but {torch.cuda.device_count()} CUDA device(s) are "
            "visible; use device='cuda' (the first) or 'cpu'"
        )
    return dev


def class_name(value: object) -> str:
    """`value` as a class name: a str, or an int as the command line reads `class_name=7`
    (the digits' classes are named '0' to '9')."""
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise TypeError(f"class_name is a {_kind(value)}: give the class's name, e.g. '7'")
    return str(value)


def overrides(value: object) -> list[str]:
    """`value` as a list of config overrides, refused where one sets a key of
    `metaaug evaluate` that the API sets from its own argument (it would be ignored, or
    would silently replace the argument)."""
    if isinstance(value, str) or not isinstance(value, Sequence):
        raise TypeError(f"overrides is a {_kind(value)}: give a list, e.g. overrides=['k=5']")
    for item in value:
        if not isinstance(item, str):
            raise TypeError(f"overrides holds a {_kind(item)}: give strings, e.g. 'k=5'")
        key = item.lstrip("+~").split("=", 1)[0].strip()
        if key in EVALUATE_ARGUMENTS:
            raise UserError(
                f"overrides holds {item!r}, which evaluate sets from its own argument; "
                f"give {key}=... to evaluate instead"
            )
    return list(value)
