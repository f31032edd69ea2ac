"""`metaaug <command> [overrides]`: pick the command, hand the rest of argv to its Hydra app."""

from __future__ import annotations

import importlib
import sys

from metaaug import __version__
from metaaug.commands import COMMANDS, HYDRA_APPS, MULTIRUN_FLAGS, NO_JOB_FLAGS
from metaaug.config import keys
from metaaug.errors import EXIT_USAGE, UserError, message, nearest
from metaaug.io import rundir  # registers ${metaaug.run_id:} before Hydra reads a config

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


def _override(argv: list[str], key: str) -> str | None:
    """The value of `key=...` on the command line: the last one, unquoted; None when absent
    or when it holds an interpolation (only Hydra can resolve that)."""
    value = None
    for arg in argv:
        name, sep, rest = arg.partition("=")
        if sep and name.lstrip("+") == key:
            value = rest
    if value is None or "${" in value:
        return None
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        value = value[1:-1]
    return value


def _claim_output_dir(argv: list[str]) -> None:
    """Hydra writes .hydra/ into the run (or sweep) directory before the command starts, so an
    explicit one is checked and locked here, before anything is written: a run directory that
    holds files, a sweep directory that holds another sweep's jobs (unless it holds the Optuna
    study the sweep resumes) or a directory another process holds is refused. The lock lasts
    as long as this process. Default directories are new by construction (rundir.RUN_ID)."""
    if any(a.split("=", 1)[0] in NO_JOB_FLAGS for a in argv):
        return
    if any(a in MULTIRUN_FLAGS for a in argv):
        sweep_dir = _override(argv, "hydra.sweep.dir")
        if sweep_dir:
            storage = _override(argv, "hydra.sweeper.storage")  # an Optuna study elsewhere
            rundir.claim_sweep_dir(sweep_dir, storage=storage)
        return
    run_dir = _override(argv, "hydra.run.dir")
    if run_dir:
        rundir.claim_run_dir(run_dir)


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
        _claim_output_dir(rest)
    except UserError as err:
        print(f"metaaug: error: {message(err, keys.BY_COMMAND.get(command))}", file=sys.stderr)
        sys.exit(EXIT_USAGE)
    # Hydra parses sys.argv itself; it sees `metaaug-<command> <overrides>`
    sys.argv = [f"metaaug {command}", *rest]
    app.main()


if __name__ == "__main__":
    main()
