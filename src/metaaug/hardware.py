"""Device, threads, seeding and determinism, resolved once per command from `hardware.*`."""

from __future__ import annotations

import os
import random

import numpy as np
import torch

from metaaug.errors import UserError


def resolve_device(name: str) -> torch.device:
    """'auto' picks CUDA when present; asking for CUDA on a machine without it is an error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise UserError(
            "hardware.device=cuda but no CUDA device is visible; use hardware=cpu or hardware=auto"
        )
    if name != "cpu" and not name.startswith("cuda"):
        raise UserError(f"hardware.device={name!r} is not known; use cpu, cuda or auto")
    return torch.device(name)


def setup(
    device: str = "auto", threads: int | None = None, deterministic: bool = False, seed: int = 0
) -> torch.device:
    """Apply the hardware settings and seed every generator; returns the torch device."""
    if threads:
        torch.set_num_threads(int(threads))
    if deterministic:
        # cuBLAS needs this set before its first use to pick deterministic kernels
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True)
        torch.backends.cudnn.benchmark = False
    seed_everything(seed)
    return resolve_device(device)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def generator(seed: int) -> torch.Generator:
    """A CPU generator: noise is drawn on the CPU and moved, so runs match across devices."""
    return torch.Generator().manual_seed(int(seed))
