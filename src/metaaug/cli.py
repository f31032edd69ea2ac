"""`metaaug <command> [overrides]`: pick the command, hand the rest of argv to its Hydra app."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

from metaaug import __version__
from metaaug.commands import COMMANDS
from metaaug.errors import EXIT_USAGE, nearest

USAGE = """usage: metaaug <command> [key=value ...] [--multirun] [--cfg job] [--help]

Meta-learned GAN initializations for few-shot data augmentation.

commands:
{commands}

`metaaug <command> --help` shows the command's config groups and keys (Hydra's help).
Examples:
  metaaug train                                   # the digits demo, about a minute on a CPU
  metaaug train dataset=omniglot dataset.root=../shared/data/omniglot target.shots=5
  metaaug train -m meta_algo.meta_lr=1e-3,3e-3    # a sweep, one run directory per job
"""


def _usage() -> str:
    lines = []
    for name, (_, help_line) in COMMANDS.items():
        lines.append(f"  {name:<10} {help_line}")
    return USAGE.format(commands="\n".join(lines))


def _refuse_used_run_dir(argv: list[str]) -> None:
    """Hydra writes .hydra/ into the run directory before the command starts, so an explicit
    `hydra.run.dir` that already holds files is refused here, before anything is written."""
    if any(a in ("-m", "--multirun") for a in argv):
        return
    for arg in argv:
        if arg.startswith("hydra.run.dir="):
            path = Path(arg.split("=", 1)[1])
            if path.is_dir() and any(path.iterdir()):
                print(
                    f"metaaug: error: run directory '{path}' already exists and is not empty; "
                    f"choose a new hydra.run.dir (metaaug never overwrites outputs)",
                    file=sys.stderr,
                )
                sys.exit(EXIT_USAGE)


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(_usage())
        return
    if argv[0] in ("-V", "--version"):
        print(f"metaaug {__version__}")
        return
    command, rest = argv[0], argv[1:]
    if command not in COMMANDS:
        hint = ", ".join(nearest(command, COMMANDS))
        print(
            f"metaaug: error: unknown command {command!r}; try one of: {hint} (metaaug --help)",
            file=sys.stderr,
        )
        sys.exit(EXIT_USAGE)
    _refuse_used_run_dir(rest)
    # Hydra parses sys.argv itself; it sees `metaaug-<command> <overrides>`
    sys.argv = [f"metaaug {command}", *rest]
    importlib.import_module(COMMANDS[command][0]).main()


if __name__ == "__main__":
    main()
