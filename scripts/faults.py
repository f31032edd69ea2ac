"""Fault trials for the README's reliability table: what survives a kill, a preemption, a
divergence, a full disk and two runs in one directory.

- SIGKILL at random moments of meta-training (checkpoint every iteration), then resume: is the
  final initialization identical, weight for weight, to an uninterrupted run?
- SIGTERM (what SLURM sends before preemption) at random moments: how many meta-iterations
  were lost (the iteration reached when the signal arrived minus the one saved)?
- Forced divergence of each learning rate (meta, inner, fine-tune) at 5 seeds, with
  guard.on_divergence=stop and =rollback: caught? exit code? last good checkpoint finite?
  completed after rollback?
- A file-size limit (a full disk's stand-in): one line, no partial file, nothing older touched?
- Two runs started at once into one run directory: one refused, the other complete?

Every run is the real command on the embedded digits data with a tiny budget. Not a test:
about 10 minutes on 2 cores. Prints markdown.

    python scripts/faults.py [--kills 10] [--terms 3] [--seeds 5]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import resource
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch

TINY = [
    "validation.every=0", "finetune.steps=3", "generate.num_images=24", "metric.epochs=1",
    "metric.min_steps=0", "metric.fidelity.steps_per_class=0", "metric.kid_subset_size=10",
    "metric.kid_subsets=5", "compare_baselines=false", "hardware.threads=1", "progress=false",
]  # fmt: skip
ITERATIONS = 60
# learning rates that send the digits run to NaN (an SGD step of this size on a GAN)
DIVERGING = {
    "meta_algo.meta_lr": ["meta_algo.meta_optimizer=sgd", "meta_algo.meta_lr=1e8"],
    "meta_algo.inner_optimizer.lr": ["meta_algo.inner_optimizer.lr=1e6"],
    "finetune.optimizer.lr": ["finetune.optimizer.name=sgd", "finetune.optimizer.lr=1e8"],
}


def command(run_dir: Path, *overrides: str) -> list[str]:
    return [sys.executable, "-m", "metaaug.cli", "train", *TINY, *overrides,
            f"hydra.run.dir={run_dir}"]  # fmt: skip


def run(run_dir: Path, *overrides: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(command(run_dir, *overrides), capture_output=True, text=True,
                          env=ENV, **kwargs)  # fmt: skip


def weights(path: Path) -> dict[str, torch.Tensor]:
    return torch.load(path, weights_only=True)["gan"]


def finite(path: Path) -> bool:
    return all(bool(torch.isfinite(w).all()) for w in weights(path).values()
               if w.is_floating_point())  # fmt: skip


def meta_training(run_dir: Path) -> bool:
    """Whether the run reached meta-training: the last line before it (the fidelity
    classifier) was logged."""
    log = run_dir / "train.log"
    return log.exists() and "fidelity classifier" in log.read_text()


def checkpointed(run_dir: Path) -> bool:
    """Whether the run wrote its first checkpoint (then a kill leaves something to resume)."""
    return (run_dir / "checkpoints" / "last.pt").exists()


def interrupted_run(
    run_dir: Path, sig: int, delay: float, *overrides: str, ready: Callable = meta_training
) -> tuple[int, str]:
    """Start a run, wait until `ready(run_dir)` plus `delay` s, send `sig`; (exit, stderr)."""
    proc = subprocess.Popen(command(run_dir, *overrides), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, env=ENV)  # fmt: skip
    while not ready(run_dir) and proc.poll() is None:
        time.sleep(0.02)
    time.sleep(delay)
    proc.send_signal(sig)
    _, err = proc.communicate()
    return proc.returncode, err


def kills(tmp: Path, n: int, rng: random.Random) -> str:
    straight = tmp / "straight"
    run(straight, f"meta_algo.iterations={ITERATIONS}", "checkpoint.every=1", check=True)
    reference = weights(straight / "checkpoints" / "meta_init.pt")
    identical = resumed = 0
    points = []
    for i in range(n):
        first = tmp / f"kill{i}"
        delay = rng.uniform(0.0, 2.0)  # meta-training lasts about 3 s
        interrupted_run(first, signal.SIGKILL, delay, f"meta_algo.iterations={ITERATIONS}",
                        "checkpoint.every=1", ready=checkpointed)  # fmt: skip
        last = first / "checkpoints" / "last.pt"
        if not last.exists():
            points.append("0")
            continue
        at = int(torch.load(last, weights_only=True)["iteration"])
        points.append(str(at))
        if at >= ITERATIONS:  # it finished before the kill: nothing to resume
            points[-1] += " (done)"
            continue
        proc = run(tmp / f"resume{i}", f"meta_algo.iterations={ITERATIONS}",
                   "checkpoint.every=1", f"resume={last}")  # fmt: skip
        if proc.returncode == 0:
            resumed += 1
            mine = weights(tmp / f"resume{i}" / "checkpoints" / "meta_init.pt")
            identical += all(torch.equal(mine[k], reference[k]) for k in reference)
    return (f"| SIGKILL at {n} random moments (checkpoint every iteration; killed at "
            f"iteration {', '.join(points)}) | {resumed} resumed, {identical} identical to the "
            "uninterrupted run, weight for weight |")  # fmt: skip


def terms(tmp: Path, n: int, rng: random.Random) -> str:
    lost, codes, resumed = [], set(), 0
    for i in range(n):
        first = tmp / f"term{i}"
        code, err = interrupted_run(
            first,
            signal.SIGTERM,
            rng.uniform(0.5, 3.0),
            "meta_algo.iterations=100000",
            "checkpoint.every=100000",
        )
        codes.add(code)
        said = re.search(r"SIGTERM at meta-iteration (\d+)", err)
        saved = int(torch.load(first / "checkpoints" / "last.pt", weights_only=True)["iteration"])
        lost.append(int(said.group(1)) - saved if said else -1)
        proc = run(
            tmp / f"termresume{i}",
            f"meta_algo.iterations={saved + 2}",
            "checkpoint.every=100000",
            f"resume={first / 'checkpoints' / 'last.pt'}",
        )
        resumed += proc.returncode == 0
    return (
        f"| SIGTERM at {n} random moments (checkpoint every 100,000 iterations) | exit "
        f"{sorted(codes)}, iterations lost {lost}, {resumed} of {n} resumed |"
    )


def divergences(tmp: Path, seeds: int) -> list[str]:
    rows = []
    for key, overrides in DIVERGING.items():
        for mode in ("stop", "rollback"):
            caught = finite_ckpt = completed = 0
            codes = set()
            for seed in range(seeds):
                d = tmp / f"div_{key}_{mode}_{seed}"
                proc = run(d, *overrides, f"seed={seed}", "meta_algo.iterations=6",
                           "checkpoint.every=2", f"guard.on_divergence={mode}",
                           "guard.lr_factor=1e-6")  # fmt: skip
                codes.add(proc.returncode)
                log = (d / "train.log").read_text() if (d / "train.log").exists() else ""
                caught += "diverged:" in proc.stderr or "guard:" in log
                ckpts = [p for p in (d / "checkpoints").rglob("*.pt")] if d.exists() else []
                finite_ckpt += all(finite(p) for p in ckpts)
                completed += (d / "synthetic" / "manifest.json").exists()
            rows.append(f"| divergence of {key} ({mode}), {seeds} seeds | caught {caught}, exit "
                        f"{sorted(codes)}, checkpoints finite in {finite_ckpt}, completed "
                        f"{completed} |")  # fmt: skip
    return rows


def full_disk(tmp: Path) -> str:
    first = tmp / "disk_before"
    run(first, "meta_algo.iterations=2", check=True)
    before = {p: p.read_bytes() for p in first.rglob("*") if p.is_file()}
    d = tmp / "disk"

    def limit() -> None:  # the logs fit, the first checkpoint does not
        resource.setrlimit(resource.RLIMIT_FSIZE, (64 * 1024, 64 * 1024))

    proc = subprocess.run(command(d, "meta_algo.iterations=4"), capture_output=True, text=True,
                          env=ENV, preexec_fn=limit)  # fmt: skip
    lines = [x for x in proc.stderr.splitlines() if x.startswith("metaaug:")]
    partial = [p.name for p in d.rglob(".*") if p.is_file() and p.name != ".lock"]
    untouched = all(p.read_bytes() == b for p, b in before.items())
    return (
        f"| file-size limit 64 KiB (a full disk's stand-in) | exit {proc.returncode}, "
        f"{len(lines)} line (`{lines[0][:60] if lines else ''}...`), partial files "
        f"{len(partial)}, earlier run untouched: {untouched} |"
    )


def concurrent(tmp: Path) -> str:
    d = tmp / "shared_dir"
    procs = [
        subprocess.Popen(
            command(d, "meta_algo.iterations=20"),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            env=ENV,
        )
        for _ in range(2)
    ]
    results = [(p.wait(), p.stderr.read() if p.stderr else "") for p in procs]
    codes = sorted(code for code, _ in results)
    metrics = d / "metrics.json"
    seeds = {json.loads(metrics.read_text())["seed"]} if metrics.exists() else set()
    config = (d / ".hydra" / "config.yaml").read_text() if (d / ".hydra").exists() else ""
    return (
        f"| two runs started at once into one run directory | exit codes {codes}, "
        f"metrics.json from {len(seeds)} run, config present: {bool(config)} |"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kills", type=int, default=10)
    ap.add_argument("--terms", type=int, default=3)
    ap.add_argument("--seeds", type=int, default=5)
    args = ap.parse_args()
    rng = random.Random(0)
    with tempfile.TemporaryDirectory(prefix="metaaug-faults-") as tmp:
        global ENV
        ENV = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1",
               "METAAUG_CACHE": str(Path(tmp) / "cache")}  # fmt: skip
        print("| fault | outcome |\n|---|---|", flush=True)
        for row in (kills(Path(tmp), args.kills, rng), terms(Path(tmp), args.terms, rng),
                    *divergences(Path(tmp), args.seeds), full_disk(Path(tmp)),
                    concurrent(Path(tmp))):  # fmt: skip
            print(row, flush=True)


ENV: dict[str, str] = {}

if __name__ == "__main__":
    main()
