"""The results pipeline: a bench's runs -> JSON (intervals over seeds, paired differences,
goals) -> the tables of docs/results.md (`make results`)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from scipy import stats

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))

from recipe_summary import summarize
from render_results import fill, recipe

REPO = Path(__file__).resolve().parents[1]
ARMS = ("reptile", "scratch", "pretrain")


def _report(seed: int, novel: dict[str, list[float]]) -> dict:
    """A metrics.json with two targets; `novel[arm]` its novel_fidelity per target."""
    targets = []
    for i in range(2):
        curves = {arm: {"50": {"novel_fidelity": novel[arm][i], "fidelity": novel[arm][i] + 0.1,
                               "copies": 0.05, "ceiling": 0.8, "memorization": 0.9,
                               "fid": 10.0 * (1 + ARMS.index(arm)), "kid": 1.0}}
                  for arm in ARMS}  # fmt: skip
        copy = {"novel_fidelity": 0.0, "fidelity": 0.9, "copies": 1.0, "ceiling": 0.8,
                "memorization": 0.0, "fid": 5.0, "kid": 0.5}  # fmt: skip
        results = {**{a: curves[a]["50"] for a in ARMS}, "copy_shots": copy}
        targets.append({"class_name": f"A/c{i}", "curves": curves, "results": results})
    return {
        "objective": {"arm": "reptile"}, "curves": {a: {"50": {}} for a in ARMS},
        "targets": targets, "target": {"shots": 5, "classes": ["A/c0", "A/c1"]},
        "image_size": 28, "meta_iterations": 100, "hardware": {"threads": 1},
        "split": {"by": "group", "groups": {"train": ["B"], "val": ["C"], "test": ["A"]}},
        "timing": {"meta_train_s": 60.0},
    }  # fmt: skip


REPORTS = [
    _report(0, {"reptile": [0.5, 0.7], "scratch": [0.1, 0.1], "pretrain": [0.4, 0.4]}),
    _report(1, {"reptile": [0.6, 0.6], "scratch": [0.0, 0.2], "pretrain": [0.3, 0.5]}),
    _report(2, {"reptile": [0.3, 0.5], "scratch": [0.1, 0.3], "pretrain": [0.5, 0.5]}),
]


def test_intervals_are_over_seeds_and_comparisons_paired() -> None:
    data = summarize(REPORTS, [0, 1, 2], [50], threads=1, experiment="omniglot_cpu")
    assert data["arms"] == ["reptile", "scratch", "pretrain", "copy_shots"]
    cell = data["table"]["reptile"]["50"]["novel_fidelity"]
    per_seed = [0.6, 0.6, 0.4]  # each seed's mean over its two targets
    assert cell["per_seed"] == pytest.approx(per_seed)
    t = stats.t.ppf(0.975, df=2)
    sem = stats.tstd(per_seed) / 3**0.5
    assert cell["mean"] == pytest.approx(sum(per_seed) / 3)
    assert cell["ci95"] == pytest.approx([cell["mean"] - t * sem, cell["mean"] + t * sem])
    # paired: the per-target difference, its mean per seed, the interval over seeds
    diff = data["paired"]["pretrain"]["novel_fidelity"]
    assert diff["per_seed"] == pytest.approx([0.2, 0.2, -0.1])
    assert data["paired"]["copy_shots"]["novel_fidelity"]["per_seed"] == pytest.approx(per_seed)
    goals = {g["goal"]: g for g in data["goals"]}
    assert goals["novel_fidelity >= 0.5 x ceiling (the ratio)"]["value"] == pytest.approx(
        (1.6 / 3) / 0.8
    )
    assert goals["copies <= 0.1 (the share)"]["met"] is True
    # pretrain's seed 2 is ahead: the paired interval reaches below 0, the goal is not met
    assert (
        goals["novel_fidelity above pretrain (the paired 95% interval's low end > 0)"]["met"]
        is False
    )
    assert data["seeds"] == [0, 1, 2] and data["threads_per_seed"] == [1, 1, 1]
    assert data["splits"]["0"]["groups"]["test"] == ["A"]


def test_the_rendered_table_shows_every_arm_with_its_interval(tmp_path: Path) -> None:
    data = summarize(REPORTS, [0, 1, 2], [50], threads=1, experiment="omniglot_cpu")
    table = recipe(data)
    lines = [line for line in table.splitlines() if line.startswith("| copy_shots |")]
    # the arm table's row, then the paired difference against it
    assert lines[0].startswith("| copy_shots | 0.00 [0.00, 0.00] | 0.90 [0.90, 0.90] | 1.00")
    lo, hi = data["paired"]["copy_shots"]["novel_fidelity"]["ci95"]
    assert lines[1].startswith(f"| copy_shots | +0.53 [{lo:+.2f}, {hi:+.2f}]")
    cell = data["table"]["reptile"]["50"]["novel_fidelity"]
    lo, hi = cell["ci95"]
    assert f"| reptile | {cell['mean']:.2f} [{lo:.2f}, {hi:.2f}]" in table
    assert "- [ ] novel_fidelity above pretrain" in table

    # make results: the block between the markers is replaced, the text around it kept
    doc = tmp_path / "results.md"
    doc.write_text("# R\n\nprose\n<!-- results:recipe -->\nold\n<!-- /results:recipe -->\nend\n")
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    (data_dir / "recipe.json").write_text(json.dumps(data))
    script = REPO / "scripts" / "render_results.py"
    args = [sys.executable, str(script), "--doc", str(doc), "--data", str(data_dir)]
    check = subprocess.run([*args, "--check"], capture_output=True, text=True)
    assert check.returncode == 1 and "make results" in check.stderr
    subprocess.run(args, check=True, capture_output=True)
    text = doc.read_text()
    assert text.startswith("# R\n\nprose\n<!-- results:recipe -->\n") and text.endswith(
        "<!-- /results:recipe -->\nend\n"
    )
    assert "old" not in text and table in text
    assert subprocess.run([*args, "--check"], capture_output=True).returncode == 0
    with pytest.raises(SystemExit, match="no <!-- results:other --> block"):
        fill(text, "other", "x")


def test_few_shot_accuracy_has_intervals_over_seeds_and_paired_differences() -> None:
    from fewshot_summary import summarize as summarize_fewshot
    from render_results import fewshot

    def run(none: list[float], gan: list[float]) -> dict:
        return {"per_episode": {"plain": {"none": none, "gan": gan}}}

    runs = {1: {0: run([0.4, 0.6, 0.5], [0.5, 0.7, 0.6]),  # gan +0.1 on every episode
                1: run([0.5, 0.5, 0.5], [0.5, 0.5, 0.8]),  # +0.1 on average
                2: run([0.6, 0.6, 0.6], [0.5, 0.6, 0.4])}}  # -0.1  # fmt: skip
    data = summarize_fewshot(runs, threads=1, settings=["--quick"])
    assert data["seeds"] == [0, 1, 2]
    gan = data["shots"]["1"]["plain"]["gan"]
    assert gan["per_seed"] == pytest.approx([0.6, 0.6, 0.5])
    diff = gan["vs_none"]
    assert diff["per_seed"] == pytest.approx([0.1, 0.1, -0.1])
    t = stats.t.ppf(0.975, df=2)
    half = t * stats.tstd([0.1, 0.1, -0.1]) / 3**0.5
    assert diff["ci95"] == pytest.approx([1 / 30 - half, 1 / 30 + half])
    # seed 0's episode interval: the spread over its 3 episodes
    assert gan["episode_ci_half_width"][0] == pytest.approx(t * 0.1 / 3**0.5)
    table = fewshot(data)
    assert f"| plain | gan | 56.7 [{100 * gan['ci95'][0]:.1f}, {100 * gan['ci95'][1]:.1f}]" in table
    assert f"+3.3 [{100 * diff['ci95'][0]:+.1f}, {100 * diff['ci95'][1]:+.1f}]" in table


def test_one_seed_has_no_interval_over_seeds() -> None:
    data = summarize(REPORTS[:1], [0], [50], threads=1, experiment="omniglot_cpu")
    cell = data["table"]["reptile"]["50"]["novel_fidelity"]
    assert cell["mean"] == pytest.approx(0.6) and cell["ci95"] == [None, None]
    assert "| reptile | 0.60 (1 seed) |" in recipe(data)
    # the goal needs a paired interval, which one seed cannot give
    goals = {g["goal"]: g for g in data["goals"]}
    assert (
        goals["novel_fidelity above scratch (the paired 95% interval's low end > 0)"]["met"]
        is False
    )
