"""Places that cannot be written (a read-only filesystem, a folder without write permission, a
file where a folder should be) or read (a data folder without read permission). Each is
refused in one line before any work, and nothing is left behind.

The test runner is root on CI, and root reads and writes through permissions, so the command
runs in a user namespace (`unshare`): as an unprivileged user for permissions, as a root with
a mount namespace of its own for a read-only tmpfs. Where `unshare` is not allowed the cases
skip.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import TINY, Runner, assert_one_line_error

REASONS = {"readonly": "the filesystem is read-only", "permission": "permission denied"}


@functools.cache
def _unshare_works(*flags: str) -> bool:
    unshare = shutil.which("unshare")
    if unshare is None:
        return False
    probe = subprocess.run([unshare, *flags, "true"], capture_output=True)
    return probe.returncode == 0


def _confined(kind: str, folder: Path, mode: int = 0o555) -> list[str]:
    """A command prefix under which files cannot be created in `folder` (which exists):
    `folder` becomes a read-only mount of itself (what it holds stays readable), or gets
    `mode` and the command an unprivileged user."""
    if kind == "readonly":
        flags = ("--user", "--map-root-user", "--mount")
        if not _unshare_works(*flags):
            pytest.skip("no user and mount namespaces here to mount a read-only filesystem")
        mount = (f"mount --bind '{folder}' '{folder}' && mount -o remount,bind,ro '{folder}' "
                 "&& exec \"$@\"")  # fmt: skip
        return ["unshare", *flags, "sh", "-c", mount, "sh"]
    folder.chmod(mode)
    if os.geteuid() != 0:
        return []
    if not _unshare_works("--user", "--map-user=1000"):
        pytest.skip("root writes through permissions and no user namespace is allowed here")
    return ["unshare", "--user", "--map-user=1000"]


@pytest.fixture(params=sorted(REASONS))
def kind(request: pytest.FixtureRequest) -> str:
    return request.param


def test_an_unwritable_place_for_the_run_directory_is_refused_before_hydra_writes(
    kind: str, tmp_path: Path, metaaug: Runner
) -> None:
    folder = tmp_path / "locked"
    folder.mkdir()
    run = functools.partial(metaaug, prefix=_confined(kind, folder), cwd=folder)
    reason = f"'{folder}' cannot be written ({REASONS[kind]})"

    explicit = run("train", *TINY, f"hydra.run.dir={folder}/run")
    assert_one_line_error(explicit, f"cannot use run directory '{folder}/run'", reason,
                          "choose a writable hydra.run.dir")  # fmt: skip
    default = run("train", *TINY)  # outputs/train/<date>/<time>-<id> under the working dir
    assert_one_line_error(default, "cannot use run directory", reason)
    sweep = run("train", "-m", *TINY, "seed=0,1")
    assert_one_line_error(sweep, "cannot use sweep directory", reason, "hydra.sweep.dir")
    generate = run("generate", "checkpoint=none.pt")
    assert_one_line_error(generate, "cannot use run directory", reason)
    assert list(folder.iterdir()) == []


def test_an_unwritable_metric_cache_is_refused_before_training(
    kind: str, tmp_path: Path, metaaug: Runner
) -> None:
    cache = tmp_path / "cache"
    cache.mkdir()
    tmp_path.chmod(0o777)  # the unprivileged user writes the run directory here
    prefix = _confined(kind, cache)
    proc = metaaug("train", *TINY, f"hydra.run.dir={tmp_path}/run", prefix=prefix, cache=cache)
    assert_one_line_error(
        proc, f"metric.cache_dir='{cache}' cannot keep the domain classifier", REASONS[kind],
        "point metric.cache_dir at a writable folder", "METAAUG_CACHE",
    )  # fmt: skip
    assert "meta-iteration" not in proc.stdout + proc.stderr  # before meta-training began
    assert not (tmp_path / "run").exists()  # the refused run left no directory behind


def test_a_read_only_cache_serves_the_classifiers_it_holds(tmp_path: Path, metaaug: Runner) -> None:
    """A shared cache that only its owner writes still serves everyone else."""
    cache, work = tmp_path / "cache", tmp_path / "work"
    work.mkdir()
    filled = metaaug("train", *TINY, "hydra.run.dir=first", cwd=work, cache=cache)
    assert filled.returncode == 0, filled.stderr[-2000:]
    stored = sorted(cache.iterdir())
    work.chmod(0o777)
    prefix = _confined("permission", cache)
    proc = metaaug("train", *TINY, "hydra.run.dir=second", cwd=work, cache=cache, prefix=prefix)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "loaded from cache" in proc.stdout + proc.stderr
    assert "trained domain classifier" not in proc.stdout + proc.stderr  # not retrained
    assert (work / "second" / "metrics.json").is_file() and sorted(cache.iterdir()) == stored


def test_an_output_folder_that_is_a_file_is_refused_before_any_work(
    tmp_path: Path, refused: Runner, tiny_run: Path
) -> None:
    afile = tmp_path / "images.png"
    afile.write_bytes(b"not a folder")
    run = refused
    train = run("train", *TINY, f"generate.out={afile}", f"hydra.run.dir={tmp_path}/run")
    assert_one_line_error(train, f"generate.out '{afile}' cannot hold the images",
                          "it is a file, not a folder")  # fmt: skip
    assert "meta-iteration" not in train.stdout + train.stderr
    assert not (tmp_path / "run").exists()
    checkpoint = next((tiny_run / "checkpoints" / "finetuned").glob("*.pt"))
    for out, problem in [(afile, "it is a file"), (afile / "sub", f"'{afile}' is a file")]:
        proc = run("generate", f"checkpoint={checkpoint}", "num_images=2", f"out={out}")
        assert_one_line_error(proc, f"out '{out}' cannot hold the images", problem)
    assert afile.read_bytes() == b"not a folder"


def test_an_output_folder_in_an_unwritable_place_is_refused(
    kind: str, tmp_path: Path, metaaug: Runner, tiny_run: Path
) -> None:
    folder = tmp_path / "locked"
    folder.mkdir()
    tmp_path.chmod(0o777)
    run = functools.partial(metaaug, prefix=_confined(kind, folder))
    checkpoint = next((tiny_run / "checkpoints" / "finetuned").glob("*.pt"))
    proc = run("generate", f"checkpoint={checkpoint}", "num_images=2", f"out={folder}/aug",
               f"hydra.run.dir={tmp_path}/run")  # fmt: skip
    assert_one_line_error(proc, f"out '{folder}/aug' cannot hold the images", REASONS[kind])
    assert list(folder.iterdir()) == []


def test_an_unreadable_dataset_root_is_one_line(tmp_path: Path, metaaug: Runner) -> None:
    root = tmp_path / "locked"
    (root / "a").mkdir(parents=True)
    tmp_path.chmod(0o777)
    run = functools.partial(metaaug, prefix=_confined("permission", root, mode=0))
    try:
        proc = run("train", "dataset=imagefolder", f"dataset.root={root}")
    finally:
        root.chmod(0o755)
    assert_one_line_error(proc, f"dataset.root '{root}' cannot be read (Permission denied)",
                          "fix its permissions or point dataset.root at")  # fmt: skip


def test_summarize_into_an_unwritable_sweep_directory_is_one_line(
    kind: str, tmp_path: Path, metaaug: Runner, tiny_run: Path
) -> None:
    sweep = tmp_path / "sweep"
    shutil.copytree(tiny_run, sweep / "0")
    tmp_path.chmod(0o777)
    proc = metaaug("summarize", str(sweep), prefix=_confined(kind, sweep))
    assert_one_line_error(proc, f"cannot write the summary into '{sweep}'", REASONS[kind],
                          "summarize a copy")  # fmt: skip
    assert sorted(p.name for p in sweep.iterdir()) == ["0"]
