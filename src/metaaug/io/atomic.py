"""Outputs that are complete or absent: files written beside their destination and renamed
into place; a full disk, a file-size limit or a read-only filesystem leave nothing partial and
end in one line."""

from __future__ import annotations

import errno
import json
import math
import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from metaaug.errors import UserError

# what the disk or the system refuses, as opposed to a bug
DISK_ERRORS = {
    errno.ENOSPC: "the disk is full",
    errno.EDQUOT: "the disk quota is exceeded",
    errno.EFBIG: "a file exceeds the file-size limit",
    errno.EROFS: "the filesystem is read-only",
    errno.EACCES: "permission was denied",
    errno.EPERM: "permission was denied",
}


def unwritable(folder: Path) -> str | None:
    """Why files cannot be created in `folder` (made, with its parents, where missing), or
    None: checked on the nearest folder that exists, before any work, so a run refused for it
    has spent nothing. `os.access` sees a read-only filesystem even for root."""
    folder = Path(os.path.abspath(folder))
    existing = next((p for p in (folder, *folder.parents) if os.path.lexists(p)), folder)
    if not existing.is_dir():
        return f"'{existing}' is {'a file' if existing.is_file() else 'something'}, not a folder"
    if not os.access(existing, os.W_OK | os.X_OK):
        readonly = os.statvfs(existing).f_flag & os.ST_RDONLY
        reason = "the filesystem is read-only" if readonly else "permission denied"
        return f"'{existing}' cannot be written ({reason})"
    return None


@contextmanager
def disk_errors(what: str, path: Path) -> Iterator[None]:
    """Turn a disk-level OSError while writing `what` at `path` into one line (UserError)."""
    try:
        yield
    except OSError as err:
        if err.errno not in DISK_ERRORS:
            raise
        raise UserError(
            f"{DISK_ERRORS[err.errno]} while writing {what} to '{path}'; the partial files were "
            "removed and nothing written before was touched; free space or choose another "
            "folder and run again"
        ) from None


def write_text(path: Path, text: str) -> Path:
    """Write `text` to `path` atomically (temporary file, fsync, rename)."""
    return write_bytes(path, text.encode())


def _json_safe(value: Any) -> Any:
    """NaN and infinities (a figure that could not be measured) as null: strict JSON."""
    if isinstance(value, Mapping):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, (int, float)):  # numpy, torch scalars
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def write_json(path: Path, report: Mapping[str, Any]) -> None:
    """`report` as strict JSON (non-finite numbers as null), written atomically."""
    text = json.dumps(_json_safe(report), indent=2, default=float, allow_nan=False)
    write_text(path, text + "\n")


def write_bytes(
    path: Path, data: bytes | memoryview, what: str = "", keep_previous: bool = False
) -> Path:
    """Write `data` to `path` atomically (temporary file, fsync, rename); `what` names it in a
    disk error (default: its file name). With `keep_previous`, the file it replaces stays as
    `<name>.prev` (hard-linked first, so `path` itself never disappears)."""
    with disk_errors(what or path.name, path):
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.chmod(tmp, 0o666 & ~umask())  # mkstemp creates 0600
            if keep_previous and path.exists():
                link = path.with_name(f".{path.name}.prev.tmp")
                link.unlink(missing_ok=True)
                os.link(path, link)
                os.replace(link, path.with_name(path.name + ".prev"))
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    return path


# what staging adds to a name: `.<name>.XXXXXXXX.tmp` (tempfile's 8 random characters)
STAGING_EXTRA = len("..XXXXXXXX.tmp")
# a rename onto `final` that another process made non-empty, a file or a link meanwhile
RACED = {errno.ENOTEMPTY, errno.EEXIST, errno.ENOTDIR, errno.EISDIR}


def too_long_to_stage(path: Path) -> str | None:
    """Why `path` cannot be staged beside itself (its name plus the staging suffix is over
    the file system's limit on one name, 255 bytes on most), or None."""
    folder = Path(os.path.abspath(path)).parent
    existing = next((p for p in (folder, *folder.parents) if p.is_dir()), folder)
    try:
        limit = os.pathconf(existing, "PC_NAME_MAX")
    except (OSError, ValueError):
        limit = 255
    size = len(os.fsencode(path.name))
    if size + STAGING_EXTRA <= limit:
        return None
    return (
        f"its name is {size} bytes long and may be at most {limit - STAGING_EXTRA} bytes (the "
        f"file system allows {limit} bytes a name, and the images are first written beside it "
        "as '.<name>.XXXXXXXX.tmp')"
    )


@contextmanager
def staged_dir(final: Path, what: str) -> Iterator[Path]:
    """Yield a temporary folder beside `final`; when the block ends normally it becomes
    `final` in one rename (`final` must be absent or empty), otherwise it is removed."""
    final.parent.mkdir(parents=True, exist_ok=True)
    with disk_errors(what, final):
        tmp = Path(tempfile.mkdtemp(dir=final.parent, prefix=f".{final.name}.", suffix=".tmp"))
        try:
            os.chmod(tmp, 0o777 & ~umask())
            yield tmp
            try:
                os.replace(tmp, final)  # over an empty folder too (POSIX rename)
            except OSError as err:  # another run (same out=) renamed its images there first
                if err.errno not in RACED:
                    raise
                raise UserError(
                    f"'{final}' was written by another process meanwhile, so {what} of this "
                    "run were discarded and nothing there was touched; choose another folder "
                    "and run again"
                ) from None
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


def umask() -> int:
    """The process umask, read without changing it where Linux tells it (os.umask(0) and back
    would race with other threads creating files)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o22)
    os.umask(mask)
    return mask
