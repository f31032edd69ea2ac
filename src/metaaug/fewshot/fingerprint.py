"""What an arm or learner holds that the config does not say: a GAN checkpoint's weights, a
trained backbone, a meta-learned initialization, a folder's images. A fewshot run's journal
records a digest of each, so that a run resumed after one of them changed (a GAN trained again
into the same folder, a backbone trained again on another CPU) is refused instead of pooling
the episodes of two models under one name (`metaaug.config.resume.check_weights`)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping
from typing import Any

import torch
from torch import Tensor, nn


def tensors(obj: Any, seen: set[int] | None = None) -> Iterator[Tensor]:
    """The tensors `obj` holds, in a fixed order: a module's state, the values of a mapping
    or sequence, and the attributes of metaaug's own objects (an arm's GAN pair, a learner's
    backbone), each object once."""
    seen = set() if seen is None else seen
    if id(obj) in seen:
        return
    seen.add(id(obj))
    if isinstance(obj, Tensor):
        yield obj
    elif isinstance(obj, nn.Module):
        yield from obj.state_dict().values()
    elif isinstance(obj, Mapping):
        for value in obj.values():
            yield from tensors(value, seen)
    elif isinstance(obj, list | tuple):
        for value in obj:
            yield from tensors(value, seen)
    elif type(obj).__module__.startswith("metaaug.") and hasattr(obj, "__dict__"):
        for _, value in sorted(vars(obj).items()):
            yield from tensors(value, seen)


def digest(obj: Any) -> str | None:
    """A short hash of the dtype, shape and bytes of every tensor `obj` holds; None if it
    holds none (its config alone defines it)."""
    h, count = hashlib.sha256(), 0
    for t in tensors(obj):
        flat = t.detach().cpu().contiguous().reshape(-1)
        h.update(f"{flat.dtype}{tuple(t.shape)}".encode())
        h.update(flat.view(torch.uint8).numpy().tobytes())
        count += 1
    return h.hexdigest()[:16] if count else None
