"""`metaaug <command> [overrides]`: pick the command, hand the rest of argv to its Hydra app."""

from __future__ import annotations

import importlib
import sys

from metaaug import __version__
from metaaug.commands import COMMANDS, HYDRA_APPS, MULTIRUN_FLAGS
from metaaug.config import keys
from metaaug.errors import EXIT_USAGE, UserError, message, nearest
from metaaug.io import rundir  # noqa: F401  (registers ${metaaug.run_id:} before Hydra reads a config)

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
    lines = [f"  {name:<10} {help_line}" for name, help_line in COMMANDS.items()]
    return USAGE.format(commands="\n".join(lines))


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(_usage())
        return
    if argv[0] in ("-V", "--version"):
        print(f"metaaug {__version__}")
        return
    command, rest = argv[0], argv[1:]
    try:
        if command not in COMMANDS:
            hint = ", ".join(nearest(command, COMMANDS))
            raise UserError(f"unknown command {command!r}; try one of: {hint} (metaaug --help)")
        # (the module may store configs of its own)
        app = importlib.import_module(f"metaaug.commands.{command}")
        # Hydra's other flags (--cfg, --config-dir, ...) are Hydra's to read: no check then
        if command in HYDRA_APPS and not any(a.startswith("-") for a in rest
                                             if a not in MULTIRUN_FLAGS):  # fmt: skip
            from metaaug.config import overrides

            overrides.check(command, [a for a in rest if a not in MULTIRUN_FLAGS])
        if command == "train":  # hardware.distributed: ranks > 0 of the run end there
            from metaaug.commands import ranks  # (imports torch: not for --help or summarize)

            ranks.launch(rest)
    except UserError as err:
        print(f"metaaug: error: {message(err, keys.BY_COMMAND.get(command))}", file=sys.stderr)
        sys.exit(EXIT_USAGE)
    # Hydra parses sys.argv itself; it sees `metaaug-<command> <overrides>`
    sys.argv = [f"metaaug {command}", *rest]
    app.main()


if __name__ == "__main__":
    main()
