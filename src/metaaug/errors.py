"""User-facing errors: one line that names the problem and the fix, exit code 2, no traceback."""

from __future__ import annotations

import contextlib
import difflib
import functools
import re
import signal
import sys
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, TypeVar

EXIT_USAGE = 2
EXIT_DIVERGED = 3
# what an interrupted command leaves: every output is written beside its place and renamed in
STOPPED = "files already complete were kept, nothing partial was written"

F = TypeVar("F", bound=Callable[..., Any])


class UserError(Exception):
    """Bad input the user can fix (missing path, too few images, impossible config).

    The message is a single line: what is wrong, then what to do about it.
    """


class BadValue(UserError):
    """A value a library function cannot work with, named neutrally.

    The message writes each argument it names in braces, `{image_size}=30 is not supported`:
    a library caller (a notebook, the Python API) reads the argument's own name,
    `image_size=30 is not supported`, and the command layer, which knows the config key each
    argument came from, names the key instead (`keyed`, with the tables of
    `metaaug.config.keys`): `dataset.image_size=30 is not supported`. Braces are only
    read around a lowercase identifier (a path holding `{name}` itself would lose those two
    braces in the message; any other brace stays).
    In an f-string the braces are doubled: `f"{{shots}}={shots} must be at least 1"`.
    """

    _ARGUMENT = re.compile(r"\{([a-z_]+)\}")

    def __init__(self, message: str) -> None:
        self.template = message
        super().__init__(self.keyed({}))

    def keyed(self, keys: Mapping[str, str]) -> str:
        """The message with each argument named by its key in `keys` (else by itself)."""
        return self._ARGUMENT.sub(lambda m: keys.get(m[1], m[1]), self.template)


def message(err: Exception, keys: Mapping[str, str] | None = None) -> str:
    """What the command line prints for `err`: a BadValue's arguments named by their config
    keys (`keys`), any other error as it is."""
    return err.keyed(keys or {}) if isinstance(err, BadValue) else str(err)


class Diverged(Exception):
    """Training produced a non-finite loss or weight; nothing non-finite was written.

    The message is one line naming where (stage and step), the quantity, and the last good
    checkpoint; `metaaug` exits with code 3.
    """


class Interrupted(Exception):
    """SIGTERM or SIGINT arrived; the state was saved. The message says how to resume;
    `metaaug` exits with 128 + the signal number, as a shell reports a killed command."""

    def __init__(self, message: str, signum: int) -> None:
        super().__init__(message)
        self.signum = signum


class Terminated(BaseException):
    """SIGTERM outside meta-training (which defers it to save a checkpoint): raised in the main
    thread, as Python raises KeyboardInterrupt for SIGINT, so that every `finally` removes its
    partial files. A BaseException: `except Exception` blocks do not swallow it."""


def _terminate(signum: int, frame: object) -> None:
    raise Terminated


@contextlib.contextmanager
def sigterm_raises() -> Iterator[None]:
    """Within the block SIGTERM raises Terminated (the main thread only: elsewhere Python
    installs no handler, and the signal keeps its usual effect)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def continue_with(hint: Callable[[], str | None]) -> Iterator[None]:
    """A Ctrl-C or SIGTERM in the block ends the command with `hint()` (how to go on, asked
    when it happens; None: nothing to add) in its one line."""
    try:
        yield
    except (KeyboardInterrupt, Terminated) as err:
        text = hint()
        if text is None:
            raise
        ctrl_c = isinstance(err, KeyboardInterrupt)
        name, signum = ("Ctrl-C", signal.SIGINT) if ctrl_c else ("SIGTERM", signal.SIGTERM)
        raise Interrupted(f"{name}; {STOPPED}; {text}", signum) from None


def nearest(name: str, choices: Iterable[str], n: int = 5) -> list[str]:
    """The valid names closest to `name`, for 'did you mean' hints."""
    choices = list(choices)
    close = difflib.get_close_matches(name, choices, n=n, cutoff=0.3)
    return close or choices[:n]


def _in_a_study() -> bool:
    """Whether this job is a trial of metaaug's Optuna sweeper, which records a failed trial
    and goes on with the study (an exit would end the whole sweep)."""
    try:
        from hydra.core.hydra_config import HydraConfig

        target = str(HydraConfig.get().sweeper.get("_target_", ""))
    except (ImportError, ValueError):  # no Hydra app running
        return False
    return target.startswith("hydra_plugins.metaaug_optuna.")


def exits_on_user_error(fn: F | None = None, *, keys: Mapping[str, str] | None = None) -> Any:
    """Turn a UserError raised by `fn` into `error: <message>` on stderr and exit code 2, a
    Diverged into `diverged: <message>` and exit code 3, an Interrupted into its message and
    128 + the signal number, a Ctrl-C or SIGTERM elsewhere into one line and 130 or 143.
    `keys` names the config key behind each argument a `BadValue` names
    (`@exits_on_user_error(keys=TRAIN)`).

    Hydra prints a traceback for any exception escaping a task function; SystemExit is not an
    Exception, so it passes through Hydra untouched. Inside an Optuna study a UserError or
    Diverged is printed the same way and then raised, for the sweeper to record the trial as
    failed; an interruption ends the study too.
    """
    if fn is None:
        return functools.partial(exits_on_user_error, keys=keys)

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            with sigterm_raises():
                return fn(*args, **kwargs)
        except (UserError, Diverged) as err:
            diverged = isinstance(err, Diverged)
            text = message(err, keys)
            print(f"metaaug: {'diverged' if diverged else 'error'}: {text}", file=sys.stderr)
            if _in_a_study():
                if isinstance(err, BadValue):
                    raise UserError(text) from err  # the trial's record names the key too
                raise
            sys.exit(EXIT_DIVERGED if diverged else EXIT_USAGE)
        except Interrupted as err:
            print(f"metaaug: interrupted: {err}", file=sys.stderr)
            sys.exit(128 + err.signum)
        except KeyboardInterrupt:  # a Ctrl-C outside meta-training (or a second one)
            print(f"metaaug: interrupted: Ctrl-C; {STOPPED}", file=sys.stderr)
            sys.exit(128 + signal.SIGINT)
        except Terminated:  # a SIGTERM outside meta-training
            print(f"metaaug: interrupted: SIGTERM; {STOPPED}", file=sys.stderr)
            sys.exit(128 + signal.SIGTERM)

    return wrapper
