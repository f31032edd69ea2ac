"""Bad input gets one line naming the problem and the fix, exit code 2, no traceback."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.conftest import TINY, Runner, assert_one_line_error


def _pngs(folder: Path, n: int) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        Image.new("L", (12, 12), 40 * i % 255).save(folder / f"{i}.png")
    return folder


def test_missing_dataset_root(refused: Runner, tmp_path: Path) -> None:
    proc = refused("train", "dataset=omniglot", f"dataset.root={tmp_path}/nowhere")
    assert_one_line_error(proc, "dataset.root", "nowhere", "does not exist")


def test_empty_dataset_root(refused: Runner, tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    proc = refused("train", "dataset=imagefolder", f"dataset.root={tmp_path}/empty")
    assert_one_line_error(proc, "empty")


def test_target_path_with_too_few_images(refused: Runner, tmp_path: Path) -> None:
    folder = _pngs(tmp_path / "mine", 3)
    proc = refused("train", f"target.path={folder}", "target.shots=5")
    assert_one_line_error(proc, "3 images", "target.shots=5")


@pytest.mark.parametrize("shots", ["0", "-1"])
def test_shots_below_one(refused: Runner, shots: str) -> None:
    assert_one_line_error(refused("train", f"target.shots={shots}"), "target.shots")


def test_unknown_target_class_lists_nearest_names(refused: Runner) -> None:
    proc = refused("train", "target.class_name=nosuch")
    assert_one_line_error(proc, "nosuch", "target.class_name")


@pytest.mark.parametrize(
    ("overrides", "fragments"),
    [(["target.classes=3"], ["target.classes=3", "2 meta-test classes", "dataset.test_fraction"]),
     (["target.classes=some"], ["target.classes='some'", "target.classes=all"]),
     (["target.classes=[0,0]"], ["each class once"]),
     (["target.classes=[]"], ["target.classes=[] names no class", "target.classes=0"]),
     (["target.classes=[0,nosuch]"], ["target.classes 'nosuch' is not a class", "nearest"]),
     (["target.classes=2", "target.class_name=0"], ["both target.class_name=0", "keep one"])],
)  # fmt: skip
def test_impossible_target_classes(
    refused: Runner, overrides: list[str], fragments: list[str]
) -> None:
    assert_one_line_error(refused("train", *overrides), *fragments)


def test_target_path_class_folder_with_too_few_images(refused: Runner, tmp_path: Path) -> None:
    _pngs(tmp_path / "mine" / "crack", 6)
    _pngs(tmp_path / "mine" / "dent", 2)
    proc = refused("train", f"target.path={tmp_path / 'mine'}", "target.shots=5")
    assert_one_line_error(proc, "class folder", "dent", "2 images but target.shots=5")


def test_unknown_precision(refused: Runner) -> None:
    proc = refused("train", "hardware.precision=fp8")
    assert_one_line_error(proc, "hardware.precision='fp8' is not known", "32, bf16, bf16-mixed")


def test_unsupported_image_size(refused: Runner) -> None:
    proc = refused("train", "dataset.image_size=20")
    assert_one_line_error(proc, "image_size=20", "16, 28, 32, 64")


def test_unreadable_image_file(refused: Runner, tmp_path: Path) -> None:
    root = tmp_path / "data"
    for c in "abcde":
        _pngs(root / c, 8)
    (root / "c" / "broken.png").write_bytes(b"not a png at all")
    proc = refused("train", "dataset=imagefolder", f"dataset.root={root}")
    assert_one_line_error(proc, "broken.png")


def test_used_run_directory_is_never_overwritten(refused: Runner, tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    keep = run_dir / "metrics.json"
    keep.write_text("precious")
    proc = refused("train", *TINY, f"hydra.run.dir={run_dir}")
    assert_one_line_error(proc, "run directory", "not empty")
    assert keep.read_text() == "precious"
    assert sorted(p.name for p in run_dir.iterdir()) == ["metrics.json"]


def test_non_empty_synthetic_output_is_never_overwritten(refused: Runner, tmp_path: Path) -> None:
    out = _pngs(tmp_path / "synthetic" / "old", 1).parent
    proc = refused("train", *TINY, f"generate.out={out}", f"hydra.run.dir={tmp_path}/run")
    assert_one_line_error(proc, "generate.out", "not empty")
    assert [p.name for p in (out / "old").iterdir()] == ["0.png"]


def test_unknown_command(refused: Runner) -> None:
    assert_one_line_error(refused("trian"), "unknown command", "train")


def test_missing_resume_checkpoint(refused: Runner, tmp_path: Path) -> None:
    proc = refused("train", f"resume={tmp_path}/last.pt")
    assert_one_line_error(proc, "resume=", "last.pt")


def test_cuda_requested_without_a_gpu(refused: Runner) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    assert_one_line_error(refused("train", "hardware=cuda"), "hardware", "no CUDA device")


def test_dagan_fine_tune_on_one_shot_needs_a_pair(refused: Runner) -> None:
    proc = refused("train", "gan=dagan", "target.shots=1", *TINY)
    assert_one_line_error(proc, "target.shots=1", "finetune.steps=0")


def test_a_split_by_group_of_classes_without_groups(refused: Runner) -> None:
    proc = refused("train", "dataset.split_by=group", *TINY)
    assert_one_line_error(proc, "needs classes in groups", "dataset.split_by=class")


def test_more_ways_than_meta_train_classes(refused: Runner) -> None:
    proc = refused("train", "gan=conditional", "gan.ways=50", *TINY)
    assert_one_line_error(proc, "gan.ways=50", "at most 6")


@pytest.mark.parametrize(
    ("overrides", "fragments"),
    [(["objective_on=test"], ["objective_on='test'", "targets or validation"]),
     (["objective_on=validation", "validation.every=0"], ["validation.every > 0"]),
     (["objective_on=validation", "meta_algo=scratch"], ["meta_algo.iterations > 0"]),
     (["objective_on=validation", "dataset.val_fraction=0"], ["no meta-val class"])],
)  # fmt: skip
def test_objective_on_validation_needs_validation(
    refused: Runner, overrides: list[str], fragments: list[str]
) -> None:
    assert_one_line_error(refused("train", *overrides), *fragments)


def _noise_classes(root: Path, names: list[str], n: int) -> Path:
    """Class folders of `n` 16x16 PNGs of noise each, no two images alike."""
    gen = np.random.default_rng(0)
    for name in names:
        (root / name).mkdir(parents=True)
        for i in range(n):
            pixels = gen.integers(0, 256, (16, 16), dtype=np.uint8)
            Image.fromarray(pixels).save(root / name / f"{i}.png")
    return root


def test_target_path_classes_that_would_share_a_folder(refused: Runner, tmp_path: Path) -> None:
    """'a b' and 'a_b' are both written as a_b/: refused before any work, not after
    meta-training with one target's checkpoint written over the other's."""
    mine = _noise_classes(tmp_path / "mine", ["a b", "a_b"], 6)
    run_dir = tmp_path / "run"
    proc = refused("train", f"target.path={mine}", f"hydra.run.dir={run_dir}")
    assert_one_line_error(proc, "classes ['a b', 'a_b'] share the folder name 'a_b'")
    assert not (run_dir / "checkpoints").exists()


def test_target_path_copy_of_a_dataset_class_is_refused(refused: Runner, tmp_path: Path) -> None:
    """A target folder holding a dataset class's images under another name: the run may
    meta-train on the very images it then calls new (a leak), so it is refused."""
    names = [str(i) for i in range(10)]
    root = _noise_classes(tmp_path / "data", names, 8)
    mine = tmp_path / "mine" / "three"
    shutil.copytree(root / "3", mine)
    data = ["dataset=imagefolder", f"dataset.root={root}", "dataset.image_size=16"]
    proc = refused("train", *data, f"target.path={mine}")
    assert_one_line_error(proc, "target.path class 'three' holds 8 image(s) of dataset class '3'")
    Image.fromarray(np.full((16, 16), 7, np.uint8)).save(mine / "0.png")  # 7 copies: a leak still
    proc = refused("train", *data, f"target.path={mine}")
    assert_one_line_error(proc, "holds 7 image(s) of dataset class '3'")
