"""Nothing lost, nothing silently wrong: divergence, verified resume, signals, complete-or-absent
outputs (docs/reliability.md lists every case)."""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from metaaug.errors import UserError
from metaaug.io.atomic import staged_dir, write_text
from metaaug.io.checkpoint import load_checked, save_atomic
from tests.conftest import METRIC, TINY, Runner

# an SGD inner loop at this rate sends Reptile's first task to NaN
DIVERGING_INNER = ["meta_algo.inner_optimizer.lr=1e6"]


def _one_line(proc: subprocess.CompletedProcess, code: int, prefix: str, *fragments: str) -> str:
    assert proc.returncode == code, (proc.returncode, proc.stderr[-3000:])
    assert "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.startswith(f"metaaug: {prefix}:")]
    assert len(lines) == 1, proc.stderr[-3000:]
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


def _finite(path: Path) -> bool:
    state = torch.load(path, weights_only=True)
    return all(torch.isfinite(t).all() for t in state["gan"].values() if t.is_floating_point())


def test_a_diverging_meta_training_stops_and_writes_nothing_non_finite(
    metaaug: Runner, tmp_path: Path
) -> None:
    run = tmp_path / "run"
    proc = metaaug("train", *TINY, *DIVERGING_INNER, f"hydra.run.dir={run}")
    _one_line(proc, 3, "diverged", "non-finite", "meta-iteration 1", "rollback")
    assert not (run / "synthetic").exists() and not (run / "metrics.json").exists()
    assert not (run / "checkpoints" / "meta_init.pt").exists()


def test_divergence_after_a_checkpoint_names_it_and_leaves_it_finite(
    metaaug: Runner, tmp_path: Path
) -> None:
    first = tmp_path / "first"
    assert metaaug("train", *TINY, f"hydra.run.dir={first}").returncode == 0
    last = first / "checkpoints" / "last.pt"
    before = last.read_bytes()
    # continue the same run past its last checkpoint with a fine-tune that diverges
    proc = metaaug(
        "train", *TINY, "meta_algo.iterations=6", f"resume={last}", "finetune.optimizer.name=sgd",
        "finetune.optimizer.lr=1e8", f"hydra.run.dir={tmp_path / 'second'}",
    )  # fmt: skip
    _one_line(proc, 3, "diverged", "fine-tune step", "nothing of this fine-tune was written")
    assert last.read_bytes() == before
    second = tmp_path / "second" / "checkpoints"
    assert _finite(second / "last.pt") and _finite(second / "meta_init.pt")
    assert not (tmp_path / "second" / "synthetic").exists()


def test_rollback_lowers_the_rates_and_finishes(metaaug: Runner, tmp_path: Path) -> None:
    run = tmp_path / "run"
    proc = metaaug(
        "train", *TINY, *DIVERGING_INNER, "guard.on_divergence=rollback", "guard.lr_factor=1e-5",
        "compare_baselines=false", f"hydra.run.dir={run}",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    log = (run / "train.log").read_text()
    assert "rollback 1 of 3 to meta-iteration 0" in log
    assert _finite(run / "checkpoints" / "meta_init.pt")
    manifest = json.loads((run / "synthetic" / "manifest.json").read_text())
    assert manifest["complete"] is True


def _resume(
    metaaug: Runner, refused: Runner, tmp_path: Path, *overrides: str
) -> subprocess.CompletedProcess:
    """A run resumed from a first TINY run (trained once), asked to refuse: in this process."""
    first = tmp_path / "first"
    if not first.exists():
        assert metaaug("train", *TINY, f"hydra.run.dir={first}").returncode == 0
    return refused(
        "train", *TINY, "meta_algo.iterations=6", *overrides,
        f"hydra.run.dir={tmp_path / 'next' / str(len(list(tmp_path.glob('next/*'))))}",
    )  # fmt: skip


def test_resume_is_verified(metaaug: Runner, refused: Runner, tmp_path: Path) -> None:
    last = f"resume={tmp_path / 'first' / 'checkpoints' / 'last.pt'}"
    # another seed draws another class split: the leak guard could be bypassed
    _one_line(_resume(metaaug, refused, tmp_path, last, "seed=1"), 2, "error", "seed: 0 -> 1")
    _one_line(_resume(metaaug, refused, tmp_path, last, "meta_algo=maml"), 2, "error",
              "meta_algo.name: reptile -> maml")  # fmt: skip
    _one_line(_resume(metaaug, refused, tmp_path, last, "gan.width=16"), 2, "error",
              "gan.width: 32 -> 16")  # fmt: skip
    # a named target that the checkpoint meta-trained on: another split
    _one_line(_resume(metaaug, refused, tmp_path, last, "target.class_name=9"), 2, "error",
              "another class split")  # fmt: skip
    proc = refused("train", *TINY, "meta_algo.iterations=2", last,
                   f"hydra.run.dir={tmp_path / 'fewer'}")  # fmt: skip
    _one_line(proc, 2, "error", "meta-iteration 4", "meta_algo.iterations >= 4")
    meta_init = f"resume={tmp_path / 'first' / 'checkpoints' / 'meta_init.pt'}"
    _one_line(_resume(metaaug, refused, tmp_path, meta_init), 2, "error", "meta_init checkpoint")


@pytest.mark.parametrize("damage", ["truncated", "empty", "text"])
def test_damaged_resume_checkpoints_get_one_line(
    refused: Runner, tmp_path: Path, damage: str
) -> None:
    good = tmp_path / "good.pt"
    save_atomic({"gan": {"w": torch.ones(3)}, "iteration": 1}, good)
    bad = tmp_path / "bad.pt"
    content = {"truncated": good.read_bytes()[:100], "empty": b"", "text": b"not a checkpoint"}
    bad.write_bytes(content[damage])
    proc = refused("train", *TINY, f"resume={bad}")
    _one_line(proc, 2, "error", "damaged or not a metaaug checkpoint", "checkpoints/last.pt")


@pytest.mark.parametrize(
    ("edit", "entry"),
    [({"rng": None}, "rng"), ({"rng": torch.zeros(100, dtype=torch.uint8)}, "rng"),
     ({"sampler_rng": "state"}, "sampler_rng"), ({"iteration": -5}, "iteration")],
)  # fmt: skip
def test_an_edited_training_state_is_refused_by_its_entry(
    refused: Runner, tiny_run: Path, tmp_path: Path, edit: dict, entry: str
) -> None:
    """A last.pt whose random states or iteration were edited: one line naming the entry,
    before the run starts (not a RuntimeError or KeyError where the entry is read)."""
    state = torch.load(tiny_run / "checkpoints" / "last.pt", weights_only=True)
    edited = tmp_path / "last.pt"
    save_atomic({**state, **edit} if edit[entry] is not None else
                {k: v for k, v in state.items() if k != entry}, edited)  # fmt: skip
    proc = refused("train", *TINY, "compare_baselines=false", f"resume={edited}")
    _one_line(proc, 2, "error", f"has no usable {entry}", "checkpoints/last.pt")


def test_load_checked_refuses_non_finite_and_foreign_states(tmp_path: Path) -> None:
    path = tmp_path / "nan.pt"
    save_atomic({"kind": "meta_init", "gan": {"g.w": torch.tensor([1.0, float("nan")])}}, path)
    with pytest.raises(UserError, match=r"non-finite weights \(g\.w"):
        load_checked(path, "arms.gan.checkpoint", "meta_init", "fix it")
    save_atomic({"something": 1}, path)
    with pytest.raises(UserError, match="holds no GAN weights"):
        load_checked(path, "resume", "training_state", "fix it")


def test_fewshot_refuses_a_diverged_gan_and_an_incomplete_synthetic_set(
    refused: Runner, tmp_path: Path
) -> None:
    ckpt = tmp_path / "meta_init.pt"
    save_atomic({"kind": "meta_init", "gan": {"w": torch.tensor([float("inf")])},
                 "classes": {"train": []}, "config": {}}, ckpt)  # fmt: skip
    proc = refused("fewshot", "fewshot.arms=[none,gan]", f"arms.gan.checkpoint={ckpt}")
    _one_line(proc, 2, "error", "non-finite weights", "diverged")
    folder = tmp_path / "synthetic"
    folder.mkdir()
    (folder / "manifest.json").write_text(json.dumps({"classes": []}))
    proc = refused("fewshot", "fewshot.arms=[none,synthetic]",
                   f"fewshot.synthetic_path={folder}")  # fmt: skip
    _one_line(proc, 2, "error", "not marked complete")


def test_evaluate_refuses_an_incomplete_synthetic_set(
    metaaug: Runner, tmp_path: Path, tiny_run: Path
) -> None:
    """The set as `fake=`, or one class folder of it: refused while its manifest is not
    marked complete; a folder of the user's own (no manifest) is read."""
    synthetic = tmp_path / "synthetic"
    shutil.copytree(tiny_run / "synthetic", synthetic)
    manifest = synthetic / "manifest.json"
    info = json.loads(manifest.read_text())
    class_dir = synthetic / info["classes"][0]["folder"]
    own = tmp_path / "own"  # the same images, without a manifest: a folder of the user's own
    shutil.copytree(class_dir, own)
    manifest.write_text(json.dumps({**info, "complete": False}))
    for fake in (synthetic, class_dir):
        proc = metaaug("evaluate", f"real={own}", f"fake={fake}")
        _one_line(proc, 2, "error", f"'{manifest}' is not marked complete")
    # the classifiers' smallest budget: what is tested is that the folder is read
    half = tmp_path / "half"  # fakes of the user's own (its real images are refused as fakes)
    half.mkdir()
    for png in sorted(own.glob("*.png"))[::2]:
        png.rename(half / png.name)
    proc = metaaug("evaluate", f"real={own}", f"fake={half}", *METRIC)
    assert proc.returncode == 0, proc.stderr[-2000:]


def test_sigterm_saves_the_current_iteration_and_says_how_to_resume(
    metric_cache: Path, tmp_path: Path
) -> None:
    run = tmp_path / "run"
    env = {**os.environ, "METAAUG_CACHE": str(metric_cache), "PYTHONUNBUFFERED": "1"}
    args = [*TINY, "meta_algo.iterations=100000", "checkpoint.every=100000", "validation.every=0"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "metaaug.cli", "train", *args, f"hydra.run.dir={run}"],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    deadline = time.time() + 300
    while "domain classifier" not in _read(run / "train.log") and time.time() < deadline:
        time.sleep(0.5)
    time.sleep(3)  # well into meta-training (no checkpoint is due before 100,000)
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=300)
    done = subprocess.CompletedProcess(proc.args, proc.returncode, "", stderr)
    line = _one_line(done, 128 + signal.SIGTERM, "interrupted", "SIGTERM at meta-iteration",
                     "resume=")  # fmt: skip
    state = torch.load(run / "checkpoints" / "last.pt", weights_only=True)
    assert f"meta-iteration {state['iteration']}:" in line and state["iteration"] > 0


def test_sigterm_after_meta_training_leaves_nothing_partial_and_says_how_to_go_on(
    metric_cache: Path, tmp_path: Path
) -> None:
    """SIGTERM in the fine-tune (no longer deferred there): the `finally` blocks run, so no
    temporary file is left, and the line says to resume from last.pt (meta-training is not
    repeated); the resumed run completes."""
    run = tmp_path / "run"
    env = {**os.environ, "METAAUG_CACHE": str(metric_cache), "PYTHONUNBUFFERED": "1"}
    base = [sys.executable, "-m", "metaaug.cli", "train", *TINY, "compare_baselines=false"]
    proc = subprocess.Popen(
        [*base, "finetune.steps=1000000", f"hydra.run.dir={run}"],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    meta_init = run / "checkpoints" / "meta_init.pt"
    deadline = time.time() + 300
    while not meta_init.is_file() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.1)
    time.sleep(1)  # into the fine-tune
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=300)
    last = run / "checkpoints" / "last.pt"
    _one_line(subprocess.CompletedProcess(proc.args, proc.returncode, "", stderr),
              128 + signal.SIGTERM, "interrupted", "SIGTERM; files already complete were kept",
              f"continue with resume={last} and the same overrides")  # fmt: skip
    assert [p for p in run.rglob(".*") if p.name != ".hydra" and ".hydra" not in p.parts
            and p.name != ".lock"] == []  # fmt: skip
    assert not (run / "synthetic").exists() and not (run / "metrics.json").exists()
    resumed = subprocess.run([*base, f"resume={last}", f"hydra.run.dir={tmp_path / 'again'}"],
                             cwd=tmp_path, env=env, capture_output=True, text=True,
                             timeout=600)  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "meta_algo resumed from" in resumed.stdout + resumed.stderr


@pytest.mark.slow  # several train runs: make test-full
def test_a_run_stopped_in_a_baseline_resumes_through_the_main_checkpoint_exactly(
    metric_cache: Path, tmp_path: Path
) -> None:
    """SIGTERM while the pretrain baseline trains: the message names the main arm's last.pt
    (the baseline's own is not a main-arm state: given as resume, it is refused), and the
    resumed run ends where an uninterrupted one does, weight for weight, with the main arm's
    validation history kept."""
    env = {**os.environ, "METAAUG_CACHE": str(metric_cache), "PYTHONUNBUFFERED": "1"}
    args = [*TINY, "baselines.pretrain.iterations=300", "checkpoint.every=1"]

    def train(run: Path, *extra: str) -> subprocess.Popen:
        return subprocess.Popen(
            [sys.executable, "-m", "metaaug.cli", "train", *args, *extra, f"hydra.run.dir={run}"],
            cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip

    whole, stopped, resumed = tmp_path / "whole", tmp_path / "stopped", tmp_path / "resumed"
    proc = train(stopped)
    baseline = stopped / "checkpoints" / "baseline_pretrain" / "last.pt"
    deadline = time.time() + 300
    while not baseline.is_file() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=300)
    main = stopped / "checkpoints" / "last.pt"
    _one_line(subprocess.CompletedProcess(proc.args, proc.returncode, "", stderr),
              128 + signal.SIGTERM, "interrupted", "SIGTERM at baseline/pretrain/meta-iteration",
              f"saved {baseline}", f"resume={main} ")  # fmt: skip
    assert 0 < torch.load(baseline, weights_only=True)["iteration"] < 300

    wrong = train(tmp_path / "wrong", f"resume={baseline}")
    _, stderr = wrong.communicate(timeout=300)
    _one_line(subprocess.CompletedProcess(wrong.args, wrong.returncode, "", stderr), 2, "error",
              "holds the meta-training of baselines.pretrain, not of meta_algo")  # fmt: skip

    for run, extra in [(whole, ()), (resumed, (f"resume={main}",))]:
        proc = train(run, *extra)
        _, stderr = proc.communicate(timeout=600)
        assert proc.returncode == 0, stderr[-3000:]
    for name in ("last.pt", "baseline_pretrain/last.pt"):
        a, b = (torch.load(r / "checkpoints" / name, weights_only=True) for r in (whole, resumed))
        assert a["iteration"] == b["iteration"]
        assert all(torch.equal(a["gan"][k], b["gan"][k]) for k in a["gan"]), name
    a, b = (json.loads((r / "metrics.json").read_text()) for r in (whole, resumed))
    assert a["results"] == b["results"] and a["validation"] == b["validation"] != {}


def _read(path: Path) -> str:
    return path.read_text() if path.exists() else ""


def test_checkpoints_keep_the_previous_generation_and_follow_the_umask(tmp_path: Path) -> None:
    path = tmp_path / "last.pt"
    save_atomic({"gan": {}, "iteration": 1}, path, keep_previous=True)
    save_atomic({"gan": {}, "iteration": 2}, path, keep_previous=True)
    assert torch.load(path, weights_only=True)["iteration"] == 2
    assert torch.load(tmp_path / "last.pt.prev", weights_only=True)["iteration"] == 1
    old = os.umask(0o022)
    try:
        save_atomic({"gan": {}}, tmp_path / "mode.pt")
    finally:
        os.umask(old)
    assert (tmp_path / "mode.pt").stat().st_mode & 0o777 == 0o644
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_a_full_disk_leaves_no_partial_folder(tmp_path: Path) -> None:
    final = tmp_path / "synthetic"
    full = pytest.raises(UserError, match="the disk is full while writing images")
    with full, staged_dir(final, "images") as staging:
        (staging / "000000.png").write_bytes(b"x")
        raise OSError(errno.ENOSPC, "No space left on device")
    assert not final.exists() and list(tmp_path.iterdir()) == []
    write_text(tmp_path / "metrics.json", "{}\n")
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"]


def test_a_file_size_limit_ends_in_one_line_and_no_partial_outputs(
    metric_cache: Path, tmp_path: Path
) -> None:
    import resource

    run = tmp_path / "run"
    env = {**os.environ, "METAAUG_CACHE": str(metric_cache), "PYTHONUNBUFFERED": "1"}

    def limit() -> None:  # 64 KiB: the logs fit, the first checkpoint does not
        resource.setrlimit(resource.RLIMIT_FSIZE, (64 * 1024, 64 * 1024))

    proc = subprocess.run(
        [sys.executable, "-m", "metaaug.cli", "train", *TINY, f"hydra.run.dir={run}"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600, preexec_fn=limit,
    )  # fmt: skip
    _one_line(proc, 2, "error", "file-size limit", "nothing written before was touched")
    leftovers = [p for p in (run / "checkpoints").rglob("*") if p.is_file()]
    assert all(not p.name.startswith(".") for p in leftovers), leftovers
    assert not (run / "synthetic").exists()


def test_a_target_with_one_held_out_image_reports_why_fid_is_missing(
    metaaug: Runner, tmp_path: Path
) -> None:
    from PIL import Image

    folder = tmp_path / "mine"
    folder.mkdir()
    for i in range(6):  # 5 shots + 1 held-out image
        Image.new("L", (8, 8), 30 * i).save(folder / f"{i}.png")
    run = tmp_path / "run"
    proc = metaaug("train", *TINY, f"target.path={folder}", "compare_baselines=false",
                   f"hydra.run.dir={run}")  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    text = (run / "metrics.json").read_text()
    assert "NaN" not in text  # strict JSON
    target = json.loads(text)["targets"][0]
    assert target["results"]["reptile"]["fid"] is None
    assert "1 held-out image(s)" in target["unavailable"]["fid"]
    assert "held-out" in target["unavailable"]["fidelity"]
