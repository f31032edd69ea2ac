"""hardware.distributed: a meta-batch split across ranks ends where one process ends, and a
torchrun run writes one run directory."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp
from torch.utils.tensorboard import SummaryWriter

from metaaug import distributed
from metaaug.data.tasks import TaskSampler
from metaaug.distributed import Rendezvous, World
from metaaug.errors import UserError
from metaaug.meta.maml import MAML
from metaaug.meta.reptile import Reptile
from metaaug.meta.settings import Adversarial, OptimizerSpec
from metaaug.models.gan import GAN, DCGANDiscriminator, DCGANGenerator
from metaaug.training.meta_loop import meta_train
from tests.conftest import TINY, Runner

ITERATIONS = 3
META_BATCH = 3  # over 2 ranks: 2 + 1 tasks, so the ranks' meta-gradients weigh 2/3 and 1/3


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _meta_train(rank: int, size: int, port: int, out: str) -> None:
    """Meta-train a tiny GAN on seeded synthetic tasks with Reptile and FOMAML (meta-steps)
    and with Reptile through `meta_train`; save each initialization as `<name>-<rank>.pt`."""
    torch.set_num_threads(1)
    if size > 1:
        distributed.init(Rendezvous(rank, size, rank, "127.0.0.1", port), cuda=False)
    gen = torch.Generator().manual_seed(0)
    classes = {f"c{i}": torch.rand(8, 1, 16, 16, generator=gen) * 2 - 1 for i in range(6)}
    adv = Adversarial("nonsat")
    # outer SGD: Adam's first steps would blow float noise in ~0 gradients up to +-lr
    algorithms = {
        "reptile": (Reptile(2, OptimizerSpec("sgd", 0.05), 0.5, adv, meta_optimizer="sgd"), 0),
        "fomaml": (MAML(2, OptimizerSpec("sgd", 0.05), 0.5, adv, meta_optimizer="sgd",
                        first_order=True), 2),
    }  # fmt: skip
    for name, (algo, query) in algorithms.items():
        gan = _initial()
        sampler = TaskSampler(classes, sorted(classes), support=4, query=query, seed=0)
        rng = torch.Generator().manual_seed(1)
        with distributed.sharing(META_BATCH):
            for _ in range(ITERATIONS):
                algo.meta_step(gan, sampler.sample(META_BATCH), rng)
        torch.save(gan.state_dict(), Path(out) / f"{name}-{rank}.pt")

    # The meta-training loop: a rank > 0 that starts elsewhere (another view of the
    # checkpoints: other weights, random states, iteration) takes rank 0's state, and writes
    # neither checkpoints nor TensorBoard (it has no writer).
    gan = _initial()
    sampler = TaskSampler(classes, sorted(classes), support=4, query=0, seed=0)
    rng = torch.Generator().manual_seed(1)
    if rank > 0:
        torch.nn.init.normal_(next(gan.parameters()))
        sampler.generator.manual_seed(5)
        rng.manual_seed(5)
    algo = Reptile(2, OptimizerSpec("sgd", 0.05), 0.5, adv, meta_optimizer="sgd")
    writer = SummaryWriter(str(Path(out) / f"tb-{rank}")) if rank == 0 else None
    meta_train(
        gan, algo, sampler, iterations=ITERATIONS, meta_batch_size=META_BATCH, rng=rng,
        writer=writer, validation=None, checkpoint_dir=Path(out) / f"checkpoints-{rank}",
        checkpoint_every=1, start=rank,
    )  # type: ignore[arg-type]  # fmt: skip
    torch.save(gan.state_dict(), Path(out) / f"loop-{rank}.pt")


def _initial() -> GAN:
    torch.manual_seed(0)
    return GAN(DCGANGenerator(8, 1, 16, width=4), DCGANDiscriminator(1, 16, width=4))


def test_two_gloo_ranks_meta_train_to_the_one_process_initialization(tmp_path: Path) -> None:
    (tmp_path / "single").mkdir()
    _meta_train(0, 1, 0, str(tmp_path / "single"))  # this process: no process group
    mp.spawn(_meta_train, args=(2, _free_port(), str(tmp_path)), nprocs=2)
    start = _initial().state_dict()
    for name in ("reptile", "fomaml", "loop"):
        one = torch.load(tmp_path / "single" / f"{name}-0.pt")
        ranks = [torch.load(tmp_path / f"{name}-{r}.pt") for r in (0, 1)]
        for key, value in one.items():
            # every rank applied the same update, bit for bit
            assert torch.equal(ranks[0][key], ranks[1][key]), (name, key)
            torch.testing.assert_close(ranks[0][key], value, rtol=0, atol=1e-5)
        moved = sum((one[k] - v).abs().sum() for k, v in start.items())
        assert moved > 1e-3, name  # the initialization moved: the comparison means something
    assert (tmp_path / "checkpoints-0" / "last.pt").is_file()
    assert any((tmp_path / "tb-0").iterdir())
    assert not (tmp_path / "checkpoints-1").exists()


@pytest.mark.parametrize(
    ("n", "size", "counts"), [(4, 2, [2, 2]), (3, 2, [2, 1]), (7, 3, [3, 2, 2]), (2, 2, [1, 1])]
)
def test_a_meta_batch_splits_as_evenly_as_possible(n: int, size: int, counts: list[int]) -> None:
    parts = [World(rank, size).part(n) for rank in range(size)]
    assert [p.stop - p.start for p in parts] == counts
    assert [i for p in parts for i in range(p.start, p.stop)] == list(range(n))


def test_a_meta_batch_smaller_than_the_world_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(distributed, "_world", World(0, 4, 0, "gloo"))
    refused = pytest.raises(UserError, match=r"meta_batch_size=2 is smaller than the 4 ranks")
    with refused, distributed.sharing(2):
        pass


def test_the_rendezvous_comes_from_torchrun_or_slurm() -> None:
    torchrun = {"RANK": "1", "WORLD_SIZE": "2", "LOCAL_RANK": "1", "MASTER_ADDR": "10.0.0.5",
                "MASTER_PORT": "29400", "SLURM_PROCID": "0", "SLURM_NTASKS": "8"}  # fmt: skip
    assert distributed.from_environment(torchrun) == Rendezvous(1, 2, 1, "10.0.0.5", 29400)
    slurm = {"SLURM_PROCID": "5", "SLURM_NTASKS": "8", "SLURM_LOCALID": "1",
             "SLURM_STEP_NODELIST": "gpu[07-10,12],cpu1", "SLURM_JOB_ID": "123456"}  # fmt: skip
    assert distributed.from_environment(slurm) == Rendezvous(5, 8, 1, "gpu07", 23456)
    assert distributed.from_environment({**slurm, "MASTER_PORT": "1234"}).port == 1234
    assert distributed.from_environment({"SLURM_PROCID": "0", "SLURM_NTASKS": "1"}) is None
    assert distributed.from_environment({}) is None
    assert distributed.first_host("node1") == "node1"
    assert distributed.first_host("a[3,5]b[08-09],c") == "a3b08"


@pytest.mark.slow  # two ranks' train runs, 18 s: make test-full (the rank logic's unit tests stay)
def test_torchrun_writes_one_run_directory_with_the_one_process_initialization(
    metaaug: Runner, metric_cache: Path, tmp_path: Path
) -> None:
    same = [*TINY, "hardware=cpu", "hardware.threads=1", f"meta_algo.meta_batch_size={META_BATCH}",
            "meta_algo.meta_optimizer=sgd", "meta_algo.meta_lr=0.5"]  # fmt: skip
    cwd = tmp_path / "ranks"
    cwd.mkdir()
    env = {**os.environ, "METAAUG_CACHE": str(metric_cache), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
         "-m", "metaaug.cli", "train", *same, "hardware.distributed=true"],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    # rank 0 alone wrote: one run directory, nothing else in the working directory
    assert [p.name for p in cwd.iterdir()] == ["outputs"]
    runs = [p for p in (cwd / "outputs").glob("*/*/*") if p.is_dir()]
    assert len(runs) == 1, runs
    run = runs[0]
    assert {"checkpoints", "synthetic", "samples", "tensorboard", "metrics.json",
            "train.log", ".hydra"} <= {p.name for p in run.iterdir()}  # fmt: skip
    assert (run / "checkpoints" / "last.pt").is_file()
    assert len(list((run / "tensorboard").glob("events.*"))) == 1
    log = (run / "train.log").read_text()
    assert "meta-training on 2 ranks (gloo): a meta-batch of 3 tasks splits 2 + 1" in log
    assert log.count("validation at meta-iteration") == 2  # once per validation, rank 0's
    report = json.loads((run / "metrics.json").read_text())
    assert report["synthetic"]["count"] == 24

    single = tmp_path / "single-run"
    proc = metaaug("train", *same, f"hydra.run.dir={single}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    ranks = torch.load(run / "checkpoints" / "meta_init.pt", weights_only=True)["gan"]
    one = torch.load(single / "checkpoints" / "meta_init.pt", weights_only=True)["gan"]
    for key, value in one.items():
        torch.testing.assert_close(ranks[key], value, rtol=0, atol=1e-5)
