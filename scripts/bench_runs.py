"""What the resumable benchmarks (`bench_fewshot.py --root`, `bench_ablation.py --root`,
`bench_recipe.py --out`) share: running a `metaaug` command, taking up a run an interrupted
bench left unfinished, and keeping a finished run's figures in the repository."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

JOURNAL = "episodes.jsonl"  # metaaug.fewshot.journal.FILE: a fewshot run's scored episodes


def metaaug(*args: str) -> None:
    """`metaaug <args>` in a fresh process; the bench stops with its stderr when it fails."""
    cmd = [sys.executable, "-m", "metaaug.cli", *args]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{proc.stderr[-3000:]}")


def take_up(run_dir: Path) -> list[str]:
    """Before a run into `run_dir` (whose finished output is absent or out of date): a folder
    an interrupted bench, or an older one, left there is moved aside to `<name>.unfinished<N>`
    (metaaug refuses a used run folder, and keeps what is in one), and the run goes on from
    what the newest attempt that kept anything kept (a later attempt holds what it took up
    from an earlier one): the overrides that say so, `resume=<its last.pt>` for a train
    run, `resume=<its folder>` for a fewshot run's scored episodes; or none."""
    if run_dir.exists():
        n = 1
        while run_dir.with_name(f"{run_dir.name}.unfinished{n}").exists():
            n += 1
        aside = run_dir.with_name(f"{run_dir.name}.unfinished{n}")
        run_dir.rename(aside)
        print(f"moved {run_dir} aside to {aside}", flush=True)
    attempts = sorted(run_dir.parent.glob(f"{run_dir.name}.unfinished*"),
                      key=lambda p: int(p.name.rpartition("unfinished")[2] or 0))  # fmt: skip
    for attempt in reversed(attempts):
        if (attempt / "checkpoints" / "last.pt").is_file():
            return [f"resume={attempt / 'checkpoints' / 'last.pt'}"]
        if (attempt / JOURNAL).is_file():
            return [f"resume={attempt}"]
    return []


def keep(path: Path, report: dict, provenance: dict) -> None:
    """A finished fewshot run's per-episode figures (accuracies and filter shares, to 6
    decimals) and where they were measured, written compactly to `path`: a bench too long for
    one session keeps each run it finished in the repository, so a later session, on a fresh
    checkout without the run folders, goes on from there instead of starting over."""
    figures = {key: {name: rounded(v) for name, v in report[key].items()}
               for key in ("per_episode", "kept")}  # fmt: skip
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps({**provenance, "seconds": round(report["seconds"], 1), **figures},
                      separators=(",", ":"))  # fmt: skip
    path.write_text(text + "\n")


def kept(path: Path) -> dict | None:
    """What `keep` wrote at `path`, or None."""
    return json.loads(path.read_text()) if path.is_file() else None


def rounded(values: dict | list) -> dict | list:
    if isinstance(values, dict):
        return {k: rounded(v) for k, v in values.items()}
    return [None if v is None else round(v, 6) for v in values]
