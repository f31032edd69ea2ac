"""`metaaug summarize MULTIRUN_DIR`: one row per trial of a sweep, as summary.csv, summary.md
and summary.png in that directory."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import NoReturn

from metaaug.errors import UserError, exits_on_user_error
from metaaug.io.atomic import unwritable
from metaaug.summary import collect, plot, write_csv, write_markdown

OUTPUTS = ("summary.csv", "summary.md", "summary.png")
USAGE = "summarize takes one multirun folder: metaaug summarize [--force] DIR"


class _Parser(argparse.ArgumentParser):
    """argparse whose usage errors are a UserError: one `metaaug: error:` line, as every
    other command's (argparse prints its usage and `metaaug summarize: error:` instead)."""

    def error(self, message: str) -> NoReturn:
        raise UserError(f"{message}; {USAGE}")


def _not_files(root: Path) -> list[str]:
    """The summary paths in `root` that exist but are no file (a folder, say): --force
    replaces files only, and renaming a file onto a folder fails after the work."""

    def what(path: Path) -> str:
        return "folder" if path.is_dir() else "broken link" if path.is_symlink() else "special file"

    paths = [root / n for n in OUTPUTS]
    return [f"'{p}' is a {what(p)}" for p in paths if os.path.lexists(p) and not p.is_file()]


def run(argv: list[str]) -> None:
    parser = _Parser(
        prog="metaaug summarize",
        description="Tabulate and plot the trials of a `metaaug train -m` sweep (Optuna or "
        "basic): writes summary.csv, summary.md and summary.png into the sweep directory.",
    )
    parser.add_argument("multirun_dir", type=Path, help="the sweep's directory (hydra.sweep.dir)")
    parser.add_argument("--force", action="store_true",
                        help="replace summary files an earlier summarize wrote")  # fmt: skip
    args = parser.parse_args(argv)
    root: Path = args.multirun_dir
    sweep = collect(root)
    problem = unwritable(root)
    if problem:
        raise UserError(f"cannot write the summary into '{root}': {problem}; summarize a copy "
                        "of the sweep directory in a writable place")  # fmt: skip
    blocked = _not_files(root)
    if blocked:
        raise UserError(f"{' and '.join(blocked)}, not a summary file; move it aside (nothing "
                        "is written over it, --force or not) and summarize again")  # fmt: skip
    existing = [name for name in OUTPUTS if (root / name).exists()]
    if existing and not args.force:
        raise UserError(
            f"'{root}' already holds {', '.join(existing)}; pass --force to write them again "
            "(they are derived from the trials, nothing else is touched)"
        )
    write_csv(sweep, root / "summary.csv")
    write_markdown(sweep, root / "summary.md")
    plot(sweep, root / "summary.png")
    best = sweep.best()
    print((root / "summary.md").read_text())
    if best is not None:
        print(f"best: job {best.job} ({root / str(best.job)}), {sweep.objective}={best.value:.4g}")


@exits_on_user_error
def main() -> None:
    run(sys.argv[1:])
