"""Checkpoints that survive a crash mid-write, keep the previous generation, never hold a
non-finite weight, and load with `torch.load(weights_only=True)`."""

from __future__ import annotations

import io
import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from metaaug.errors import UserError
from metaaug.io.atomic import disk_errors, write_bytes


def non_finite(tensors: dict[str, Any]) -> str | None:
    """The name of the first floating-point tensor with a NaN or infinity in a (nested) state
    dict, or None when every one is finite."""
    for name, value in tensors.items():
        if isinstance(value, dict):
            inner = non_finite(value)
            if inner is not None:
                return f"{name}.{inner}"
        elif (
            isinstance(value, Tensor)
            and value.is_floating_point()
            and not bool(torch.isfinite(value).all())
        ):
            return str(name)
    return None


def _generator_state(value: Any) -> bool:
    """Whether `value` restores a CPU generator (a resumed run's noise and task draws)."""
    try:
        torch.Generator().set_state(value.cpu() if isinstance(value, Tensor) else value)
    except (RuntimeError, TypeError):
        return False
    return True


# what each kind holds beside its GAN weights, as its readers index it: a file edited by hand
# is refused here in one line, not by a KeyError or TypeError where the entry is read
ENTRIES = {
    "finetuned": {"shots": lambda v: isinstance(v, Tensor) and v.dim() == 4},
    "training_state": {
        "iteration": lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 0,
        "rng": _generator_state,
        "sampler_rng": _generator_state,
    },
}


def save_atomic(obj: dict[str, Any], path: str | Path, keep_previous: bool = False) -> Path:
    """Write `obj` to `path` through a temporary file in the same folder, fsync and os.replace.

    A reader (or a resumed run) sees the old file or the new one, never half of one, and the
    file is on disk before it replaces the old one. With `keep_previous`, the file it replaces
    stays as `<name>.prev` (hard-linked first, so `path` itself never disappears). Files
    follow the umask, like every other output.
    """
    path = Path(path)
    what = f"the checkpoint {path.name}"
    with disk_errors(what, path):
        path.parent.mkdir(parents=True, exist_ok=True)
    # serialized in memory first: torch.save reports a failed write (a full disk) as a
    # RuntimeError without the errno that says what happened
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return write_bytes(path, buffer.getbuffer(), what, keep_previous)


def load(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a metaaug checkpoint safely (tensors and plain containers only)."""
    return torch.load(path, map_location=map_location, weights_only=True)


def load_checked(
    path: str | Path, key: str, kind: str, fix: str, map_location: str | torch.device = "cpu"
) -> dict[str, Any]:
    """Load the checkpoint `path` given as config `key`, refusing with one line (UserError)
    a missing, damaged, truncated or foreign file, one that is not of `kind` (its "kind"
    entry, or the entries a file of that kind holds), or one with non-finite weights. `fix`
    says what to point `key` at instead."""
    path = Path(path).expanduser()
    where = f"{key}='{path}'"
    if not path.is_file():
        raise UserError(f"{where} is not a file; {fix}")
    try:
        state = load(path, map_location)
    except (EOFError, RuntimeError, pickle.UnpicklingError, zipfile.BadZipFile, OSError) as err:
        if isinstance(err, pickle.UnpicklingError):  # refused unread: loading could run code
            reason = "it holds objects other than tensors and plain values"
        else:
            reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        damaged = f"{where} is damaged or not a metaaug checkpoint ({reason}); {fix}"
        raise UserError(damaged) from None
    if not isinstance(state, dict) or "gan" not in state:
        raise UserError(f"{where} is not a metaaug checkpoint (it holds no GAN weights); {fix}")
    found = state.get("kind", "training_state" if "iteration" in state else "meta_init")
    if found != kind:
        raise UserError(f"{where} is a {found} checkpoint, not a {kind} one; {fix}")
    unusable = [name for name, ok in ENTRIES.get(kind, {}).items() if not ok(state.get(name))]
    if unusable:
        raise UserError(
            f"{where} has no usable {', '.join(unusable)}, which a {kind} checkpoint holds "
            f"(was it edited?); {fix}"
        )
    bad = non_finite(state["gan"])
    if bad is not None:
        raise UserError(f"{where} holds non-finite weights ({bad}: the run diverged); {fix}")
    return state
