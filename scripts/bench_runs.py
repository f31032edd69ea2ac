"""What the resumable benchmarks (`bench_fewshot.py --root`, `bench_ablation.py --root`) share:
running a `metaaug` command, and taking up a run an interrupted bench left unfinished."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def metaaug(*args: str) -> None:
    """`metaaug <args>` in a fresh process; the bench stops with its stderr when it fails."""
    cmd = [sys.executable, "-m", "metaaug.cli", *args]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{proc.stderr[-3000:]}")


def take_up(run_dir: Path) -> list[str]:
    """Before a run into `run_dir` (whose finished output is absent): a folder an interrupted
    bench left there is moved aside to `<name>.unfinished<N>` (metaaug refuses a used run
    folder, and keeps what is in one), and a train run continues from its last checkpoint:
    the overrides that say so (`resume=...`), or none."""
    if not run_dir.exists():
        return []
    n = 1
    while (aside := run_dir.with_name(f"{run_dir.name}.unfinished{n}")).exists():
        n += 1
    run_dir.rename(aside)
    last = aside / "checkpoints" / "last.pt"
    print(f"moved the unfinished {run_dir} to {aside}", flush=True)
    return [f"resume={last}"] if last.is_file() else []
