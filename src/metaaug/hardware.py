"""Device, threads, host memory, seeding and determinism, resolved once per command from
`hardware.*` (`hardware.distributed`, the ranks of a train run: `metaaug.distributed`)."""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import random
import sys

import numpy as np
import torch

from metaaug import distributed
from metaaug.errors import BadValue

log = logging.getLogger(__name__)

# glibc mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD, _M_MMAP_MAX = -1, -4


def resolve_device(name: str) -> torch.device:
    """'auto' picks CUDA when present; asking for CUDA on a machine without it is an error.
    With hardware.distributed, 'cuda' (and 'auto' on CUDA) is each rank's own GPU, the one of
    its local rank."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise BadValue(
            "{device}=cuda but no CUDA device is visible; use the CPU (hardware=cpu) or auto"
        )
    if name != "cpu" and not name.startswith("cuda"):
        raise BadValue(f"{{device}}={name!r} is not known; use cpu, cuda or auto")
    world = distributed.world()
    if name == "cuda" and world.size > 1:
        return torch.device("cuda", world.local_rank)
    return torch.device(name)


def reuse_host_memory() -> bool:
    """Make glibc keep freed memory for reuse instead of returning it to the system.

    By default glibc serves every allocation above 32 MB with a fresh mmap and unmaps it on
    free, so each one page-faults anew on first touch (12 ms per 52 MB here). A training step
    of FIGR's pair allocates such buffers by the dozen (weight gradients, convolution
    workspaces): with them reused its fp32 episode took 3.9 s instead of 6.9 s and its bf16
    episode 2.4 s instead of 3.4 s, for ~10% more peak memory. Returns whether it applied
    (glibc on Linux only; elsewhere the allocator is left alone).
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        ok = libc.mallopt(_M_MMAP_MAX, 0) and libc.mallopt(_M_TRIM_THRESHOLD, 2**30)
    except (OSError, AttributeError):  # not glibc (musl has no mallopt)
        return False
    return bool(ok)


def usable_cpus() -> int:
    """The CPU cores this process may run on (a SLURM allocation or taskset narrows them;
    `os.cpu_count()` counts the whole machine)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def setup(
    device: str = "auto",
    threads: int | None = None,
    deterministic: bool = False,
    seed: int = 0,
    reuse_memory: bool = True,
) -> torch.device:
    """Apply the hardware settings and seed every generator; returns the torch device."""
    if reuse_memory and not reuse_host_memory():
        log.info("hardware.reuse_memory: not glibc on Linux; the C allocator is left as it is")
    if threads:
        torch.set_num_threads(int(threads))
    if deterministic:
        # cuBLAS needs this set before its first use to pick deterministic kernels
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True)
        torch.backends.cudnn.benchmark = False
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    return resolve_device(device)


def generator(seed: int) -> torch.Generator:
    """A CPU generator: noise is drawn on the CPU and moved, so runs match across devices."""
    return torch.Generator().manual_seed(int(seed))
