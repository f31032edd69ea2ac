"""`metaaug fewshot task=DIR`: a user's own tasks, each scored, then pooled with each task as
one unit."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from scipy import stats
from sklearn.datasets import load_digits

from metaaug.config import build
from metaaug.config.fewshot_inputs import episode_sources
from metaaug.config.overrides import composed
from metaaug.fewshot.tasks import pooled
from tests.conftest import Runner, assert_one_line_error

QUICK = ["fewshot.episodes=3", "learners.plain.steps=3", "metric.epochs=1", "metric.min_steps=0"]


def _write_task(root: Path, classes: dict[str, tuple[int, int]], offset: int = 0) -> Path:
    """A task folder of sklearn digits: class name -> (support, query) image counts."""
    digits = load_digits()
    for name, (n_support, n_query) in classes.items():
        rows = np.flatnonzero(digits.target == int(name))[offset:]
        for part, picked in (("support", rows[:n_support]),
                             ("query", rows[n_support : n_support + n_query])):  # fmt: skip
            folder = root / part / name
            folder.mkdir(parents=True, exist_ok=True)
            for i, row in enumerate(picked):
                pixels = (digits.images[row] * 255 / 16).astype(np.uint8)
                Image.fromarray(pixels).save(folder / f"{i}.png")
    return root


def test_pooling_counts_each_task_once_with_paired_differences() -> None:
    def task(none: list[float], classic: list[float]) -> dict:
        return {"plain": {"none": np.array(none), "classic": np.array(classic)}}

    per_task = {"a": task([0.5, 0.7], [0.8, 0.8]),  # means 0.6 and 0.8
                "b": task([0.4, 0.4], [0.4, 0.6]),  # 0.4 and 0.5
                "c": task([0.9, 0.9], [0.8, 0.8])}  # 0.9 and 0.8  # fmt: skip
    rows = {r["arm"]: r for r in pooled(per_task, 0.95)}
    assert rows["none"]["accuracy"] == pytest.approx((0.6 + 0.4 + 0.9) / 3)
    diffs = np.array([0.2, 0.1, -0.1])
    assert rows["classic"]["diff"] == pytest.approx(diffs.mean())
    half = stats.t.ppf(0.975, df=2) * diffs.std(ddof=1) / np.sqrt(3)
    assert rows["classic"]["diff_ci"] == pytest.approx(half)
    assert rows["none"]["tasks"] == 3 and rows["none"]["diff"] is None
    one = pooled({"a": per_task["a"]}, 0.95)
    assert one[0]["ci"] is None and one[1]["diff"] == pytest.approx(0.2)
    assert one[1]["diff_ci"] is None  # one task: no interval


def test_fewshot_scores_each_task_and_pools_them(metaaug: Runner, tmp_path: Path) -> None:
    root = tmp_path / "tasks"
    _write_task(root / "first", {"1": (3, 4), "7": (3, 5)})
    _write_task(root / "second", {"0": (3, 4), "8": (3, 4), "9": (3, 4)}, offset=20)
    run_dir = tmp_path / "run"
    proc = metaaug("fewshot", f"task={root}", *QUICK, "fewshot.learners=[protonet,plain]",
                   "fewshot.arms=[none,classic]", f"hydra.run.dir={run_dir}")  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads((run_dir / "fewshot.json").read_text())
    assert list(report["tasks"]) == ["first", "second"]
    first = report["tasks"]["first"]
    assert first["classes"] == ["1", "7"]
    assert len(first["per_episode"]["plain"]["none"]) == 3  # repeats of the one task
    # a query set of 9 images: each accuracy is a multiple of 1/9
    for value in first["per_episode"]["protonet"]["none"]:
        assert round(value * 9, 6) == pytest.approx(round(value * 9))
    pooled_rows = {(r["learner"], r["arm"]): r for r in report["rows"]}
    means = [np.mean(report["tasks"][t]["per_episode"]["protonet"]["classic"]) for t in
             ("first", "second")]  # fmt: skip
    assert pooled_rows["protonet", "classic"]["accuracy"] == pytest.approx(np.mean(means))
    # the objective: the first learner with the last arm, pooled
    assert report["objective"]["accuracy"] == pytest.approx(np.mean(means))
    text = (run_dir / "fewshot.md").read_text()
    assert "# task first: 2-way 3-shot, repeated" in text and "4-5 queries per class" in text
    assert "# task second: 3-way 3-shot, repeated" in text
    assert "## Pooled over 2 task(s)" in text


@pytest.mark.parametrize(
    ("classes", "fragment"),
    [({"1": (3, 4), "7": (2, 4)}, "unequal support sets (1: 3, 7: 2)"),
     ({"1": (3, 4)}, "has 1 class")],
)  # fmt: skip
def test_a_task_folder_that_cannot_be_scored_is_refused(
    refused: Runner, tmp_path: Path, classes: dict, fragment: str
) -> None:
    root = _write_task(tmp_path / "task", classes)
    proc = refused("fewshot", f"task={root}", *QUICK)
    assert_one_line_error(proc, fragment)


def test_support_and_query_must_hold_the_same_classes(refused: Runner, tmp_path: Path) -> None:
    root = _write_task(tmp_path / "task", {"1": (3, 4), "7": (3, 4)})
    for png in (root / "query" / "7").iterdir():
        png.unlink()
    (root / "query" / "7").rmdir()
    proc = refused("fewshot", f"task={root}", *QUICK)
    assert_one_line_error(proc, "support classes ['1', '7'] but query classes ['1']")


def test_a_folder_without_tasks_is_refused(refused: Runner, tmp_path: Path) -> None:
    (tmp_path / "empty" / "x").mkdir(parents=True)
    proc = refused("fewshot", f"task={tmp_path / 'empty'}", *QUICK)
    assert_one_line_error(proc, "holds no support/ and query/ folders", "<task>/support/<class>")
    proc = refused("fewshot", f"task={tmp_path / 'missing'}", *QUICK)
    assert_one_line_error(proc, "is not a folder")
    proc = refused("fewshot", f"task={tmp_path / 'empty'}", *QUICK, "fewshot.arms=[none,synthetic]")
    assert_one_line_error(proc, "drop the synthetic arm")


def test_episodes_from_meta_val_classes_to_choose_settings_on(
    metaaug: Runner, refused: Runner, tmp_path: Path
) -> None:
    run_dir = tmp_path / "run"
    split = ["dataset.val_fraction=0.3", "dataset.test_fraction=0.3", "fewshot.ways=2"]
    proc = metaaug("fewshot", *QUICK, *split, "fewshot.classes=val", "fewshot.arms=[none]",
                   "fewshot.learners=[protonet]", f"hydra.run.dir={run_dir}")  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads((run_dir / "fewshot.json").read_text())
    held = report["classes"]
    assert held["episodes_from"] == "val" and len(held["val"]) >= 2
    assert not set(held["val"]) & set(held["test"])
    assert f"episodes from {len(held['val'])} meta-val classes" in proc.stdout + proc.stderr
    # no meta-val class: one line naming the key to raise
    proc = refused("fewshot", *QUICK, "fewshot.classes=val")
    assert_one_line_error(proc, "fewshot.classes=val", "dataset.val_fraction")


def test_a_view_arm_from_the_command_line(metaaug: Runner, refused: Runner, tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    view = "+arms.classic_light={of:classic,weight:0.25}"
    proc = metaaug("fewshot", *QUICK, "fewshot.learners=[plain]", view,
                   "fewshot.arms=[none,classic,classic_light]",
                   f"hydra.run.dir={run_dir}")  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads((run_dir / "fewshot.json").read_text())
    assert [r["arm"] for r in report["rows"]] == ["none", "classic", "classic_light"]
    # a view needs its arm listed
    proc = refused("fewshot", *QUICK, view, "fewshot.arms=[none,classic_light]")
    assert_one_line_error(proc, "arms.classic_light.of=classic", "a view needs an arm listed")


def test_a_task_cut_from_an_episode_scores_as_that_episode(
    metaaug: Runner, omniglot_root: Path, tmp_path: Path
) -> None:
    """Omniglot's first meta-test episode written out as a task folder: `task=DIR` reads its
    images as the dataset does and gives repeat 0 the seeds of episode 0, so each learner and
    arm scores on repeat 0 exactly what the episodes path scores on episode 0 (the user's
    problem is measured as the benchmark's episodes are)."""
    settings = ["dataset=omniglot", f"dataset.root={omniglot_root}", "fewshot.ways=3",
                "fewshot.shots=2", "fewshot.queries=4", *QUICK[1:], "fewshot.episodes=2",
                "fewshot.learners=[protonet,plain]", "fewshot.arms=[none,classic]"]  # fmt: skip
    cfg = composed("fewshot", settings)
    classes, split = build.classes_and_split(cfg)
    cut = episode_sources(cfg, classes, split, {})["episodes"].episode(0)  # what the command draws
    task = tmp_path / "cut"
    for part, images, labels in (("support", cut.support, cut.support_labels),
                                 ("query", cut.query, cut.query_labels)):  # fmt: skip
        for slot, name in enumerate(cut.class_names):
            folder = task / part / f"{slot}_{name.replace('/', '-')}"  # in slot order
            folder.mkdir(parents=True)
            for i, image in enumerate(images[labels == slot]):
                level = torch.round((image[0] + 1) * 127.5).to(torch.uint8).numpy()
                Image.fromarray(255 - level).save(folder / f"{i:02d}.png")  # Omniglot: inverted

    scored = {}
    for mode, extra in (("episodes", []), ("task", [f"task={task}"])):
        run_dir = tmp_path / f"run_{mode}"
        proc = metaaug("fewshot", *settings, *extra, f"hydra.run.dir={run_dir}")
        assert proc.returncode == 0, proc.stderr[-3000:]
        report = json.loads((run_dir / "fewshot.json").read_text())
        per_episode = report["tasks"]["cut"]["per_episode"] if extra else report["per_episode"]
        scored[mode] = {(learner, arm): accuracies[0] for learner, arms in per_episode.items()
                        for arm, accuracies in arms.items()}  # fmt: skip
    assert len(scored["task"]) == 4 and scored["task"] == scored["episodes"]
