"""The wheel carries the configs: `metaaug` runs from an installed wheel, from any directory."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from tests.conftest import REPO, TINY


@pytest.fixture(scope="module")
def wheel_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv holding only the built wheel; torch and friends come from the dev venv
    through a .pth line, so no download is needed. The dev venv's editable install is not
    visible there (.pth files on such added paths are not processed)."""
    tmp = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(tmp), "."],
        cwd=REPO, check=True, capture_output=True,
    )  # fmt: skip
    (wheel,) = tmp.glob("metaaug-*.whl")
    venv = tmp / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    site = subprocess.run(
        [venv / "bin" / "python", "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
        check=True, capture_output=True, text=True,
    ).stdout.strip()  # fmt: skip
    Path(site, "_metaaug_test_deps.pth").write_text(sysconfig.get_path("purelib") + "\n")
    subprocess.run(
        [venv / "bin" / "python", "-m", "pip", "install", "-q", "--no-deps", "--no-index",
         str(wheel)],
        check=True, capture_output=True,
    )  # fmt: skip
    return venv


def _run(venv: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["METAAUG_CACHE"] = str(cwd / "cache")
    return subprocess.run(
        [str(venv / "bin" / "metaaug"), *args], cwd=cwd, env=env, capture_output=True, text=True
    )


def test_installed_wheel_runs_from_any_directory(wheel_venv: Path, tmp_path: Path) -> None:
    where = subprocess.run(
        [wheel_venv / "bin" / "python", "-c", "import metaaug; print(metaaug.__file__)"],
        cwd=tmp_path, check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip
    assert str(wheel_venv) in where, "the wheel, not the source tree, must be imported"

    proc = _run(wheel_venv, tmp_path, "train", "--help")
    assert proc.returncode == 0, proc.stderr
    assert "meta_algo: fomaml, maml, metasgd, pretrain, reptile, scratch" in proc.stdout

    # the Optuna sweeper ships in the wheel (hydra_plugins.metaaug_optuna) and Hydra finds it
    proc = _run(wheel_venv, tmp_path, "train", "hparams_search=optuna", "--cfg", "hydra")
    assert proc.returncode == 0, proc.stderr
    assert "_target_: hydra_plugins.metaaug_optuna.sweeper.OptunaSweeper" in proc.stdout

    proc = _run(wheel_venv, tmp_path, "train", *TINY, "hydra.run.dir=run")
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert report["dataset"] == "digits" and "reptile" in report["results"]
