"""Meta-training across processes (`hardware.distributed=true`): the ranks of torch.distributed
from torchrun's or SLURM's environment, a meta-batch's tasks split across them, their
meta-gradients summed before the outer step, and what the ranks other than 0 run.

The scheme:
- Every rank samples the same meta-batch (the task sampler and the noise generator are seeded
  alike) and draws every task's random numbers, so the random streams stay in step; it then
  adapts only its slice of the tasks (`World.part`), weights its meta-gradient by its share of
  the meta-batch, and the ranks sum them (`World.sum`, one all-reduce per meta-iteration).
  Every rank applies the same update: the one a single process computes from the whole batch.
- Rank 0 is the run. It alone starts Hydra (run directory, lock, log file), builds the
  metrics, validates, checkpoints, writes TensorBoard and runs everything after
  meta-training. Ranks > 0 never enter the Hydra app (`launch`): they compose the same config,
  wait until rank 0 starts meta-training (its data is then downloaded and loaded), build the
  data and the GAN, run the main arm's meta-training in step with rank 0 (`follow`) and exit,
  having written nothing (`commands/ranks.py`). The baselines meta-train on rank 0 alone.
- Every meta-training starts from rank 0's state (weights, outer optimizer, random states,
  iteration; `training.meta_loop`), so a resume or a rollback holds on every rank alike.

Rendezvous: torchrun's RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR and MASTER_PORT; else SLURM's
SLURM_PROCID, SLURM_NTASKS and SLURM_LOCALID (one task per rank: `srun`), with MASTER_ADDR,
if set, else the first host of the step's node list, and MASTER_PORT, if set, else 20000 +
SLURM_JOB_ID mod 20000 (every task of a job computes the same one). Backend: nccl when the
run computes on CUDA (each rank on the GPU of its LOCAL_RANK), else gloo.
"""

from __future__ import annotations

import atexit
import datetime
import functools
import logging
import os
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor

from metaaug.errors import BadValue

log = logging.getLogger(__name__)

# Rank 0 builds its metrics (a domain classifier, minutes when not cached) before it
# meta-trains, and it validates between meta-iterations, while the other ranks wait in a
# collective: they wait this long before giving up.
TIMEOUT = datetime.timedelta(minutes=60)
SLURM_PORT = 20000  # MASTER_PORT under SLURM: SLURM_PORT + SLURM_JOB_ID mod SLURM_PORT


@dataclass(frozen=True)
class World:
    """The ranks a meta-batch is split across: one process unless `hardware.distributed`."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0  # the GPU index of this rank on its node
    backend: str = ""  # gloo or nccl; "" for one process

    def part(self, n: int) -> slice:
        """This rank's tasks of a meta-batch of `n`: consecutive, as even as can be (the first
        n % size ranks take one more)."""
        q, r = divmod(n, self.size)
        lo = self.rank * q + min(self.rank, r)
        return slice(lo, lo + q + (self.rank < r))

    def sum(self, tensors: list[Tensor]) -> list[Tensor]:
        """Each tensor summed over the ranks, as one all-reduce of one flat buffer; on one
        process, the tensors themselves."""
        if self.size == 1:
            return tensors
        dtype = functools.reduce(torch.promote_types, (t.dtype for t in tensors))
        flat = torch.cat([t.detach().reshape(-1).to(dtype) for t in tensors])
        dist.all_reduce(flat)
        out, at = [], 0
        for t in tensors:
            out.append(flat[at : at + t.numel()].view(t.shape).to(t.dtype))
            at += t.numel()
        return out

    def agree(self, value: int) -> int:
        """The largest of every rank's `value`: a decision (a signal received) all ranks share."""
        if self.size == 1:
            return value
        device = torch.device("cuda", self.local_rank) if self.backend == "nccl" else None
        flag = torch.tensor([value], dtype=torch.int64, device=device)
        dist.all_reduce(flag, op=dist.ReduceOp.MAX)
        return int(flag.item())

    def from_rank0(self, obj: Any) -> Any:
        """Rank 0's `obj` (picklable; tensors on the CPU), on every rank."""
        if self.size == 1:
            return obj
        box = [obj if self.rank == 0 else None]
        dist.broadcast_object_list(box, src=0)
        return box[0]


LOCAL = World()
_world = LOCAL  # this process's place, once `init` has run
_sharing = False  # inside `sharing`: meta-algorithms split their meta-batches
_ready = False  # `ready` passed


def world() -> World:
    return _world


def current() -> World:
    """The world a meta-algorithm splits its meta-batch across now (one process outside
    `sharing`)."""
    return _world if _sharing else LOCAL


def is_main() -> bool:
    """Whether this process writes: rank 0, or the only process."""
    return _world.rank == 0


@dataclass(frozen=True)
class Rendezvous:
    """Where this process stands and where rank 0 listens."""

    rank: int
    size: int
    local_rank: int
    address: str
    port: int


def first_host(nodelist: str) -> str:
    """The first host of a SLURM node list: 'gpu[03-05,09],cpu1' -> 'gpu03'."""
    depth, end = 0, len(nodelist)
    for i, ch in enumerate(nodelist):
        depth += {"[": 1, "]": -1}.get(ch, 0)
        if ch == "," and depth == 0:
            end = i
            break
    return re.sub(r"\[([^\]]*)\]", lambda m: re.split(r"[,-]", m.group(1))[0], nodelist[:end])


def from_environment(env: Mapping[str, str] = os.environ) -> Rendezvous | None:
    """The rendezvous torchrun (RANK, WORLD_SIZE, ...) or srun (SLURM_PROCID, SLURM_NTASKS)
    describes; None for a single process."""
    if "RANK" in env and "WORLD_SIZE" in env:
        rank, size = int(env["RANK"]), int(env["WORLD_SIZE"])
        local = int(env.get("LOCAL_RANK", rank))
        address, port = env.get("MASTER_ADDR", "127.0.0.1"), int(env.get("MASTER_PORT", 29500))
    elif "SLURM_PROCID" in env and "SLURM_NTASKS" in env:
        rank, size = int(env["SLURM_PROCID"]), int(env["SLURM_NTASKS"])
        local = int(env.get("SLURM_LOCALID", 0))
        nodes = env.get("SLURM_STEP_NODELIST") or env.get("SLURM_JOB_NODELIST") or "127.0.0.1"
        address = env.get("MASTER_ADDR") or first_host(nodes)
        job = int(env.get("SLURM_JOB_ID", 0))
        port = int(env.get("MASTER_PORT") or SLURM_PORT + job % SLURM_PORT)
    else:
        return None
    return Rendezvous(rank, size, local, address, port) if size > 1 else None


def _close() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def init(rdv: Rendezvous, cuda: bool) -> World:
    """Join the process group (nccl with `cuda`, each rank on the GPU of its local rank; else
    gloo); this process's world from then on."""
    global _world
    backend = "nccl" if cuda else "gloo"
    if cuda:
        torch.cuda.set_device(rdv.local_rank)
    dist.init_process_group(
        backend, init_method=f"tcp://{rdv.address}:{rdv.port}", rank=rdv.rank,
        world_size=rdv.size, timeout=TIMEOUT,
    )  # fmt: skip
    atexit.register(_close)
    _world = World(rdv.rank, rdv.size, rdv.local_rank, backend)
    return _world


def ready() -> None:
    """Every rank passes here once: rank 0 when it starts meta-training, ranks > 0 before they
    load the data (which rank 0 has downloaded and loaded by then)."""
    global _ready
    if _world.size > 1 and not _ready:
        dist.barrier(device_ids=[_world.local_rank] if _world.backend == "nccl" else None)
    _ready = True


def leave() -> None:
    """Every rank, once the main arm's meta-training is over: wait for each other, then close
    the process group. Ranks > 0 exit next; a group left open until exit, its peer gone, could
    abort a rank in gloo's teardown ("terminate called without an active exception")."""
    if _world.size > 1 and dist.is_initialized():
        dist.barrier(device_ids=[_world.local_rank] if _world.backend == "nccl" else None)
        dist.destroy_process_group()


def check_batch(meta_batch_size: int, size: int) -> None:
    if meta_batch_size < size:
        raise BadValue(
            f"{{meta_batch_size}}={meta_batch_size} is smaller than the {size} ranks: each "
            f"rank adapts tasks of the meta-batch; set {{meta_batch_size}} to a multiple of "
            f"{size}"
        )


@contextmanager
def sharing(meta_batch_size: int, enabled: bool = True) -> Iterator[World]:
    """Within the block meta-algorithms split each meta-batch across the ranks (`enabled`: the
    main arm's meta-training; a baseline meta-trains on rank 0 alone). Yields that world."""
    global _sharing
    w = _world if enabled else LOCAL
    if w.size == 1:
        yield w
        return
    check_batch(meta_batch_size, w.size)
    ready()
    counts = [World(r, w.size).part(meta_batch_size) for r in range(w.size)]
    counts_text = " + ".join(str(s.stop - s.start) for s in counts)
    log.info("meta-training on %d ranks (%s): a meta-batch of %d tasks splits %s", w.size,
             w.backend, meta_batch_size, counts_text)  # fmt: skip
    _sharing = True
    try:
        yield w
    finally:
        _sharing = False
