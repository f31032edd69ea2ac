"""The episode journal of a `metaaug fewshot` run, `episodes.jsonl`: each episode's accuracies
are appended the moment they are known, so a run that stops (Ctrl-C, SIGTERM, a job's time
limit, a killed process) keeps every episode it finished, and a later run given
`resume=<its folder>` takes them up and scores only the others.

An episode is a function of the seeds alone (`episodes`, `scoring`), so an episode taken up is
the one the new run would have scored itself: the figures equal an uninterrupted run's. The
first line records what defines the run; the command refuses a journal whose run was defined
otherwise (`metaaug.config.resume.taken_episodes`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from metaaug.errors import BadValue

FILE = "episodes.jsonl"
KIND = "metaaug fewshot episodes"

# one episode: accuracy per learner per arm, and the share kept per filtering arm
Result = tuple[dict[str, dict[str, float]], dict[str, float]]
Taken = dict[str, dict[int, Result]]  # per episode source (`episodes`, or a task's name)


@dataclass
class Part:
    """One episode source's share of a journal: the episodes already scored, and where each
    new one is recorded (`scoring.score` skips the first and calls the second)."""

    done: Mapping[int, Result] = field(default_factory=dict)
    record: Callable[[int, Result], None] = lambda i, result: None


def _line(source: str, i: int, result: Result) -> str:
    acc, kept = result
    return json.dumps({"source": source, "episode": i, "accuracy": acc, "kept": kept}) + "\n"


class Journal:
    """An open journal: its first line says what defines the run; every later line is one
    scored episode, written whole and flushed (a process killed while writing leaves at most
    its last line torn, which `read` drops)."""

    def __init__(self, handle: TextIO, taken: Taken) -> None:
        self._handle = handle
        self.taken = taken

    def part(self, source: str) -> Part:
        done = self.taken.setdefault(source, {})

        def record(i: int, result: Result) -> None:
            done[i] = result
            self._handle.write(_line(source, i, result))
            self._handle.flush()

        return Part(dict(done), record)

    def count(self) -> int:
        return sum(len(episodes) for episodes in self.taken.values())


@contextmanager
def opened(path: Path, defines: Mapping[str, Any], taken: Taken) -> Iterator[Journal]:
    """A new journal at `path` (which must not exist), holding the episodes `taken` up from an
    interrupted run first: this run's journal is then whole by itself, and a run interrupted
    again is resumed from its own folder."""
    with open(path, "x") as handle:
        handle.write(json.dumps({"journal": KIND, "defines": dict(defines)}) + "\n")
        for source, episodes in taken.items():
            handle.writelines(_line(source, i, r) for i, r in sorted(episodes.items()))
        handle.flush()
        yield Journal(handle, {s: dict(e) for s, e in taken.items()})


def read(path: Path) -> tuple[dict[str, Any], Taken]:
    """What defined the run that wrote the journal at `path`, and its scored episodes per
    source. A torn last line (the process was killed while writing it) is dropped; any other
    damage is refused (BadValue, one line)."""
    # what follows the last newline is nothing, or a line written in part: dropped
    lines = path.read_text(encoding="utf-8", errors="replace").split("\n")[:-1]

    def damaged(n: int, why: str) -> BadValue:
        return BadValue(
            f"{{resume}}: line {n} of '{path}' {why}, so its episodes cannot be taken up; "
            "start a new run without {resume}"
        )

    try:
        head = json.loads(lines[0]) if lines else None
    except json.JSONDecodeError:
        head = None
    if (
        not isinstance(head, dict)
        or head.get("journal") != KIND
        or not isinstance(head.get("defines"), dict)
    ):
        raise damaged(1, f"is not the header of a {KIND} journal")
    taken: Taken = {}
    for n, line in enumerate(lines[1:], start=2):
        try:
            entry = json.loads(line)
            result = (entry["accuracy"], entry["kept"])
            taken.setdefault(str(entry["source"]), {})[int(entry["episode"])] = result
        except (json.JSONDecodeError, KeyError, TypeError, ValueError):
            raise damaged(n, "is not a scored episode") from None
    return head["defines"], taken
