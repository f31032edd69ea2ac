"""Bad input that a command can know before its work is refused before it: not
after hours of sampling or training, and without a run directory left to block the retry."""

from __future__ import annotations

from pathlib import Path

import pytest

from metaaug.config import validate
from tests.conftest import TINY, Runner, assert_one_line_error


def test_generate_refuses_more_images_than_memory_holds_before_sampling(
    refused: Runner, tiny_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """num_images=2000000000 held every image in memory and ended in an
    allocation traceback (or the OOM killer) after minutes of sampling. On a 1 MiB machine,
    10000 16x16 grayscale images (10 MB) are refused naming the most that fit."""
    monkeypatch.setattr(validate, "ram_bytes", lambda: 2**20)
    (checkpoint,) = (tiny_run / "checkpoints" / "finetuned").glob("*.pt")
    out = tmp_path / "images"
    proc = refused("generate", f"checkpoint={checkpoint}", "num_images=10000", f"out={out}")
    assert_one_line_error(
        proc, "num_images=10000 needs at least", "of memory",
        "10000 images x 1 x 16x16 x 4 bytes", "use num_images <= 1024",
    )  # fmt: skip
    assert not out.exists()


@pytest.mark.parametrize(
    ("args", "fragments"),
    [(["hydra.run.dir={ds}/run"], ["run directory '{ds}/run' lies inside dataset.root '{ds}'",
                                    "choose a hydra.run.dir outside dataset.root"]),
     (["-m", "seed=0,1", "hydra.sweep.dir={ds}/sweep"],
      ["sweep directory '{ds}/sweep' lies inside dataset.root '{ds}'", "hydra.sweep.dir"]),
     (["generate.out={ds}/images"],
      ["generate.out folder '{ds}/images' lies inside dataset.root '{ds}'",
       "choose a generate.out outside dataset.root"])],
)  # fmt: skip
def test_a_run_directory_inside_the_dataset_is_refused_before_hydra_writes(
    refused: Runner, tmp_path: Path, args: list[str], fragments: list[str]
) -> None:
    """A run directory inside dataset.root was accepted, and the next run read
    its outputs (run/samples) as a meta-test class, silently."""
    ds = (tmp_path / "ds").resolve()
    (ds / "0").mkdir(parents=True)
    given = [a.format(ds=ds) for a in args]
    proc = refused("train", *given, "dataset=imagefolder", "dataset.image_size=16",
                   f"dataset.root={ds}")  # fmt: skip
    assert_one_line_error(proc, *(f.format(ds=ds) for f in fragments))
    assert [p.name for p in ds.iterdir()] == ["0"]  # nothing written into the dataset


@pytest.mark.parametrize("support", ["meta_algo.support=300", "baselines.pretrain.support=300"])
def test_tasks_larger_than_a_class_are_refused_before_the_classifiers_train(
    refused: Runner, tmp_path: Path, support: str
) -> None:
    """Support + query beyond a class's images was refused when meta-training
    started (a baseline's: after the main arm had trained), after the domain classifiers
    trained, and the run directory it left (with tensorboard/) blocked the corrected command
    with the same hydra.run.dir."""
    run = tmp_path / "run"
    proc = refused("train", *TINY, support, f"hydra.run.dir={run}")
    assert_one_line_error(proc, "images but a task needs support + query = 300 + 0 = 300",
                          "lower meta_algo.support/meta_algo.query")  # fmt: skip
    assert "domain classifier" not in proc.stderr + proc.stdout
    assert not run.exists()


@pytest.mark.parametrize(
    ("args", "fragments"),
    [(["gan=dagan", "baselines.pretrain.ways=3"],
      ["image-conditioned GAN learns from one class per task, but ways=3"]),
     (["gan=conditional", "gan.ways=50"], ["gan.ways=50: a task needs between 1 and"])],
)  # fmt: skip
def test_classes_per_task_the_run_cannot_draw_are_refused_before_the_classifiers_train(
    refused: Runner, tmp_path: Path, args: list[str], fragments: list[str]
) -> None:
    """Were refused when the arm was planned, after the classifiers trained and tensorboard/
    was written, which kept the run directory and blocked the corrected command."""
    run = tmp_path / "run"
    proc = refused("train", *TINY, *args, f"hydra.run.dir={run}")
    assert_one_line_error(proc, *fragments)
    assert "domain classifier" not in proc.stderr + proc.stdout
    assert not run.exists()
