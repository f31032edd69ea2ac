"""Run directories: a default name no other run gets, and a lock that keeps a second process out.

Hydra picks the run directory and writes .hydra/ into it before a command starts, so two
processes given the same directory would mix their outputs. Two guards:
- default directories end in a per-process random token (the `metaaug.run_id` resolver), so
  runs started in the same second still get directories of their own;
- a process writes into a directory only while it holds an exclusive flock on the directory's
  `.lock` file. The kernel drops the lock when the process ends, however it ends (kill -9
  too), so a crashed run never blocks the next one; the file itself stays (unlinking a lock
  file races with a process about to take it).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import functools
import logging
import os
import secrets
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from omegaconf import OmegaConf

from metaaug.errors import UserError
from metaaug.io.atomic import unwritable

log = logging.getLogger(__name__)

LOCK_FILE = ".lock"
STUDY_FILE = "optuna.db"  # where metaaug's Optuna sweeper keeps a study it can resume
RESOLVER = "metaaug.run_id"
# One token per process: Hydra resolves hydra.run.dir more than once (the job's output dir,
# .hydra/, the log file) and all must agree; it carries the resolved value to joblib workers
# in the config's resolver cache (use_cache below).
RUN_ID = secrets.token_hex(3)

_held: dict[Path, int] = {}  # directory -> descriptor of its lock file, held by this process
# run directories that held nothing (or a lone lock file) when this process claimed them: a
# run refused there (UserError) leaves them as it found them
_claimed_empty: set[Path] = set()
# what Hydra writes into a run directory before the command starts (the log: `<job>.log`)
HYDRA_FILES = (".hydra", LOCK_FILE)


def register_resolver() -> None:
    """`${metaaug.run_id:}` in a config: this process's token (idempotent)."""
    if not OmegaConf.has_resolver(RESOLVER):
        OmegaConf.register_new_resolver(RESOLVER, lambda: RUN_ID, use_cache=True)


# Registered on import: every process that resolves a run directory imports this module
# (`metaaug` before Hydra starts, the command modules, hence also joblib's workers).
register_resolver()


def _holder(directory: Path) -> str:
    try:
        pid = (directory / LOCK_FILE).read_text().strip()
    except OSError:
        return ""
    return f" (pid {pid})" if pid.isdigit() else ""


def acquire(directory: Path | str, what: str = "run directory", key: str = "hydra.run.dir") -> Path:
    """Take the lock on `directory` (created if missing) until `release` or this process ends.

    Raises UserError naming the directory and the fix when another process holds it. On a
    file system without locks it warns and goes on unlocked.
    """
    directory = Path(directory).resolve()
    if directory in _held:
        return directory
    make_dir(directory, what, key)
    fd = os.open(directory / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as err:
        os.close(fd)  # a flock belongs to its open file: closing this one frees nothing else
        if err.errno in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS):
            log.warning("cannot lock %s (%s); two runs there would mix outputs", directory, err)
            return directory
        if err.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            raise
        raise UserError(
            f"{what} '{directory}' is in use by another metaaug process{_holder(directory)}; "
            f"wait for it to finish or choose a new {key}"
        ) from None
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()}\n".encode())
    _held[directory] = fd
    return directory


def make_dir(directory: Path, what: str = "run directory", key: str = "hydra.run.dir") -> None:
    """Create `directory` (and its parents), or refuse it in one line when nothing can be
    written there (a read-only place, a file in the way): before Hydra writes a byte."""
    problem = unwritable(directory)
    if problem is None:
        try:
            directory.mkdir(parents=True, exist_ok=True)
            return
        except OSError as err:  # what access() cannot foresee (a full disk, a race)
            problem = f"'{err.filename or directory}' cannot be created ({err.strerror})"
    raise UserError(f"cannot use {what} '{directory}': {problem}; choose a writable {key}")


def release(directory: Path | str) -> None:
    fd = _held.pop(Path(directory).resolve(), None)
    if fd is not None:
        os.close(fd)


@contextmanager
def run_dir_lock(directory: Path | str) -> Iterator[Path]:
    """Hold the lock on a command's run directory for the `with` block; a lock this process
    already holds (taken by `metaaug` before Hydra started) is kept as it is. A run refused
    in the block (UserError) in a directory it found empty leaves no directory behind."""
    directory = Path(directory).resolve()
    held = directory in _held
    if not held:
        acquire(directory)
    try:
        yield directory
    except UserError:
        discard_if_unused(directory)
        raise
    finally:
        if not held:
            release(directory)


def discard_if_unused(directory: Path) -> None:
    """Remove a run directory this process found empty and that holds only what Hydra wrote
    before the command started (.hydra/, the log, the lock): a refused run (bad value, missing
    data) then leaves nothing, and the same hydra.run.dir can be used for the corrected run."""
    directory = directory.resolve()
    if directory not in _claimed_empty or not directory.is_dir():
        return
    entries = list(directory.iterdir())
    if not all(p.name in HYDRA_FILES or p.suffix == ".log" for p in entries):
        return  # the run wrote something of its own: keep all of it
    _close_logs_in(directory)  # else a later record would write the log file anew
    for p in entries:
        if p.name == LOCK_FILE:
            continue
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p)
        else:
            p.unlink()
    release(directory)  # the lock file last: nothing else of this run is left
    (directory / LOCK_FILE).unlink(missing_ok=True)
    with contextlib.suppress(OSError):  # another process put something there: its directory
        directory.rmdir()


def _close_logs_in(directory: Path) -> None:
    loggers = [
        logging.getLogger(),
        *(logging.getLogger(name) for name in logging.root.manager.loggerDict),
    ]
    for logger in loggers:
        for handler in list(logger.handlers):
            if (
                isinstance(handler, logging.FileHandler)
                and Path(handler.baseFilename).parent == directory
            ):
                logger.removeHandler(handler)
                handler.close()


def _refuse_used_run_dir(directory: Path) -> None:
    # a lock file alone is left by a run that never started: it does not count
    if directory.is_dir() and any(p.name != LOCK_FILE for p in directory.iterdir()):
        raise UserError(
            f"run directory '{directory}' already exists and is not empty; choose a new "
            "hydra.run.dir (metaaug never overwrites outputs)"
        )


def _claim(directory: Path, refuse: Callable[[Path], None], what: str, key: str) -> None:
    """Unless `refuse(directory)` raises, hold its lock for the rest of this process."""
    refuse(directory)
    acquire(directory, what, key)
    try:  # again: a run may have come and gone between the check and the lock
        refuse(directory)
    except UserError:
        release(directory)
        raise


def sweep_jobs(sweep_dir: Path | str) -> list[str]:
    """The job folders (those holding a .hydra/) already in a sweep directory, unless it
    holds an Optuna study: rerunning the sweep resumes the study in new job folders."""
    sweep_dir = Path(sweep_dir)
    if not sweep_dir.is_dir() or (sweep_dir / STUDY_FILE).exists():
        return []
    return sorted(p.name for p in sweep_dir.iterdir() if (p / ".hydra").is_dir())


def _refuse_used_sweep_dir(sweep_dir: Path, study_elsewhere: bool) -> None:
    jobs = [] if study_elsewhere else sweep_jobs(sweep_dir)
    if jobs:
        shown = ", ".join(f"{name}/" for name in jobs[:3]) + (", ..." if len(jobs) > 3 else "")
        raise UserError(
            f"sweep directory '{sweep_dir}' already holds the jobs of another sweep ({shown}); "
            f"choose a new hydra.sweep.dir (metaaug never overwrites outputs; an Optuna study "
            f"resumes where its {STUDY_FILE} is)"
        )


def claim_sweep_dir(sweep_dir: Path, *, storage: str | None = None) -> None:
    """For the sweep directory as Hydra resolved it (its callback), before Hydra writes there:
    refuse one that holds another sweep's jobs (see `sweep_jobs`; not checked when `storage`,
    the Optuna sweeper's study storage, is elsewhere), else hold its lock for the rest of this
    process."""
    elsewhere = storage not in (None, "", "null")  # unset: the study is in the sweep dir
    refuse = functools.partial(_refuse_used_sweep_dir, study_elsewhere=elsewhere)
    _claim(sweep_dir, refuse, "sweep directory", "hydra.sweep.dir")


def claim_run_dir(directory: Path) -> None:
    """For the run directory as Hydra resolved it (its callback), before Hydra writes there:
    refuse one that holds files, else hold its lock for the rest of this process; one that
    was empty is removed again if the run leaves nothing in it."""
    empty = not directory.is_dir() or all(p.name == LOCK_FILE for p in directory.iterdir())
    _claim(directory, _refuse_used_run_dir, "run directory", "hydra.run.dir")
    if empty:
        _claimed_empty.add(directory)
