"""Sweeps beyond one machine: hydra-submitit-launcher's local executor runs a multirun's jobs,
and `hydra/launcher=slurm` turns a sweep into the sbatch script SLURM would get."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import TINY, Runner

# Run `metaaug` with submitit's SLURM side stubbed: `srun` is "found", and the first sbatch
# script is written to argv[1] instead of being submitted (the sweep then stops).
SBATCH_CAPTURE = """
import shutil, sys
from pathlib import Path

import submitit.slurm.slurm as slurm

out = Path(sys.argv[1])

def capture(self, command):
    out.write_text(self._make_submission_file_text(command, "uid"))
    raise SystemExit(0)

shutil.which = lambda name, *args, **kwargs: f"/usr/bin/{name}"
slurm.SlurmExecutor._submit_command = capture
from metaaug.cli import main
main(sys.argv[2:])
"""


def test_submitit_local_runs_each_job_of_a_multirun(metaaug: Runner, tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"
    proc = metaaug(
        "train", "-m", "hydra/launcher=submitit_local", "seed=0,1", *TINY, "hardware.threads=1",
        f"hydra.sweep.dir={sweep}",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    seeds = []
    for job in ("0", "1"):
        report = json.loads((sweep / job / "metrics.json").read_text())
        assert report["synthetic"]["count"] == 24
        seeds.append(report["seed"])
    assert seeds == [0, 1]
    assert any((sweep / ".submitit").iterdir())  # the jobs went through submitit


def test_an_optuna_sweep_on_slurm_asks_for_the_preset_resources(
    metric_cache: Path, tmp_path: Path
) -> None:
    script = tmp_path / "sbatch.sh"
    args = ["train", "-m", "hparams_search=optuna", "hydra/launcher=slurm",
            "hydra.launcher.partition=gpu-short", "hydra.launcher.timeout_min=90",
            "hydra.launcher.array_parallelism=2", "hydra.sweeper.n_trials=4",
            "hydra.sweeper.n_jobs=4", "hardware.threads=8",
            f"hydra.sweep.dir={tmp_path / 'sweep'}"]  # fmt: skip
    env = {**os.environ, "METAAUG_CACHE": str(metric_cache)}
    proc = subprocess.run(
        [sys.executable, "-c", SBATCH_CAPTURE, str(script), *args],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = set(script.read_text().splitlines())
    assert {
        "#SBATCH --partition=gpu-short",
        "#SBATCH --gpus-per-node=1",
        "#SBATCH --cpus-per-task=8",
        "#SBATCH --mem=32GB",
        "#SBATCH --time=90",
        "#SBATCH --array=0-3%2",  # 4 trials at a time, 2 running at once
    } <= lines, script.read_text()
