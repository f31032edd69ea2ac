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
    what an earlier attempt kept: `resume=<its last.pt>` for a train run (the newest attempt
    with one: a later attempt holds what it took up from an earlier one), `resume=<its
    folder>` for a fewshot run (the attempt whose journal scored most, the newest of those:
    one an earlier session kept, `restore_unfinished`, may be older); or none."""
    if run_dir.exists():
        aside = next_attempt(run_dir)
        run_dir.rename(aside)
        print(f"moved {run_dir} aside to {aside}", flush=True)
    tried = attempts(run_dir)
    for attempt in reversed(tried):
        if (attempt / "checkpoints" / "last.pt").is_file():
            return [f"resume={attempt / 'checkpoints' / 'last.pt'}"]
    journals = [a for a in tried if (a / JOURNAL).is_file()]
    if journals:
        return [f"resume={max(reversed(journals), key=lambda a: scored(a / JOURNAL))}"]
    return []


def scored(journal: Path) -> int:
    """How many whole episode lines the journal at `journal` holds (0 if there is none)."""
    if not journal.is_file():
        return 0
    return sum(1 for line in journal.read_text().splitlines()[1:] if line.endswith("}"))


def next_attempt(run_dir: Path) -> Path:
    """The first free `<name>.unfinished<N>` beside `run_dir`."""
    n = 1
    while run_dir.with_name(f"{run_dir.name}.unfinished{n}").exists():
        n += 1
    return run_dir.with_name(f"{run_dir.name}.unfinished{n}")


def attempts(run_dir: Path) -> list[Path]:
    """`run_dir` and the attempts `take_up` moved aside, oldest first, those that exist."""
    aside = sorted(run_dir.parent.glob(f"{run_dir.name}.unfinished*"),
                   key=lambda p: int(p.name.rpartition("unfinished")[2] or 0))  # fmt: skip
    return [*aside, *([run_dir] if run_dir.is_dir() else [])]


def keep_unfinished(run_dir: Path, path: Path, cpu: str) -> int:
    """The scored episodes of an unfinished fewshot run (its attempt that scored most) kept at
    `path`, its journal with `cpu` added to the header, unless `path` holds as many already: a
    600-episode run longer than what is left of a session goes on in the next one instead of
    starting over. How many episodes `path` holds."""
    best = max(attempts(run_dir), key=lambda a: scored(a / JOURNAL), default=None)
    if best is None or scored(best / JOURNAL) <= scored(path):
        return scored(path)
    head, *lines = (best / JOURNAL).read_text().splitlines()
    whole = [line for line in lines if line.endswith("}")]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join([json.dumps({**json.loads(head), "kept_on": cpu}), *whole]) + "\n")
    return len(whole)


def restore_unfinished(path: Path, run_dir: Path, cpu: str) -> str | None:
    """Before a fewshot run into `run_dir`: the episodes an earlier session kept at `path`
    placed as an attempt `take_up` goes on from, when they were scored on this CPU (`cpu`:
    elsewhere the GAN trained here differs, and metaaug would refuse them), by weights metaaug
    can check, and no attempt here scored as many. What was done, in a line, or None."""
    if not path.is_file():
        return None
    head = json.loads(path.read_text().split("\n", 1)[0])
    if head.get("kept_on") != cpu:
        return (f"{path} was scored on {head.get('kept_on')}, not here on {cpu}: "
                f"{run_dir.name} starts over")  # fmt: skip
    if "weights" not in head["defines"]:  # (a metaaug that recorded none: nothing to check)
        return f"{path} does not say which weights scored it: {run_dir.name} starts over"
    if max((scored(a / JOURNAL) for a in attempts(run_dir)), default=0) >= scored(path):
        return None
    attempt = next_attempt(run_dir)
    attempt.mkdir(parents=True)
    (attempt / JOURNAL).write_text(path.read_text())
    return f"{run_dir.name} goes on from the {scored(path)} episodes kept at {path}"


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
