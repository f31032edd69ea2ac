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
    # the bench adds its worker count and each run's seconds: the table says both
    data["workers"], data["seconds"] = 2, {"1": {"0": 90.0, "1": 1200.0, "2": 600.0}}
    table = fewshot(data)
    assert "threads 1, 2 worker process(es)" in table
    assert "(minutes per run of the episodes, seed by seed: 1.5, 20.0, 10.0)" in table


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


# ------------------------------------------------------------------------- the other benches


def _interval_text(values: list[float], fmt: str) -> str:
    """The cell `render_results` writes for `values` over seeds: mean [low, high]."""
    t = stats.t.ppf(0.975, df=len(values) - 1)
    mean = sum(values) / len(values)
    half = t * stats.tstd(values) / len(values) ** 0.5
    return f"{fmt.format(mean)} [{fmt.format(mean - half)}, {fmt.format(mean + half)}]"


def _default_run(seed: int, fidelity: dict[str, float]) -> dict:
    """A metrics.json of `metaaug train` with the defaults: one target, no eval_steps curves,
    every arm measured once after its finetune_steps."""
    point = {arm: {"novel_fidelity": f - 0.1, "fidelity": f, "copies": 0.1, "ceiling": 0.99,
                   "memorization": 0.8, "fid": 20.0 - 10 * f, "kid": 1.0}
             for arm, f in fidelity.items()}  # fmt: skip
    point["copy_shots"] = {"novel_fidelity": 0.0, "fidelity": 1.0, "copies": 1.0,
                           "ceiling": 0.99, "memorization": 0.0, "fid": 9.0}  # fmt: skip
    return {
        "objective": {"arm": "reptile"}, "dataset": "digits", "finetune_steps": 100,
        "curves": {a: {} for a in ARMS}, "results": point,
        "targets": [{"class_name": str(seed), "curves": {a: {} for a in ARMS}, "results": point}],
        "target": {"shots": 5, "classes": [str(seed)]}, "image_size": 16,
        "meta_iterations": 500, "hardware": {"threads": 2},
        "split": {"train": [], "val": [], "test": []},
        "timing": {"meta_train_s": 17.0 + seed},
    }  # fmt: skip


def test_train_renders_timings_and_the_default_runs_quality_at_its_own_step() -> None:
    from recipe_summary import interval
    from render_results import train

    fidelity = [0.8, 0.9, 0.85]
    reports = [_default_run(s, {"reptile": f, "scratch": f - 0.2, "pretrain": f - 0.1})
               for s, f in enumerate(fidelity)]  # fmt: skip
    # no curve: the run's own finetune_steps read its results; the arms come from them
    quality = summarize(reports, [0, 1, 2], [100], threads=2, experiment="none")
    assert quality["arms"] == ["reptile", "scratch", "pretrain", "copy_shots"]
    assert quality["table"]["reptile"]["100"]["fidelity"]["per_seed"] == pytest.approx(fidelity)
    assert quality["paired"]["scratch"]["fidelity"]["per_seed"] == pytest.approx([0.2] * 3)
    data = {
        "bench": "train", "command": "metaaug train seed=S hardware.threads=T",
        "dataset": "digits", "seeds": [0, 1, 2], "threads": 2, "threads_per_seed": [2, 2, 2],
        "cpu": "Test CPU", "torch": "2.0",
        "timing": {"wall_s": interval([24.0, 25.0, 26.0]),
                   "meta_train_s": interval([17.0, 18.0, 19.0])},
        "quality": quality,
    }  # fmt: skip
    table = train(data)
    assert (
        "| wall time, around the subprocess (s) | 25.0 [22.5, 27.5] | 24.0, 25.0, 26.0 |" in table
    )
    assert "| meta-train, validation included (s) | 18.0 [15.5, 20.5] |" in table
    assert "Test CPU, torch 2.0" in table and "(digits, 500 meta-iterations, 100 fine-tune" in table
    assert f"| reptile | {_interval_text([0.7, 0.8, 0.75], '{:.2f}')} | " in table
    assert "| scratch | +0.20 [+0.20, +0.20] | +0.20 [+0.20, +0.20] | -2 [-2, -2] |" in table


def _timing(tasks_per_s: float, steps: int, batch: int) -> dict:
    return {"tasks_per_s": tasks_per_s, "steps": steps, "seconds": batch * steps / tasks_per_s}


def test_meta_renders_speed_memory_figr_and_verdicts() -> None:
    from render_results import meta

    no_warnings = {"fallbacks": {}, "other": {}}
    data = {
        "bench": "meta", "quick": False, "cpu": "Test CPU", "threads": 2, "interop_threads": 2,
        "torch": "2.0", "cuda": False, "wall_s": 186.0,
        "speed": {
            "support": 4, "reptile_inner_steps": 10, "maml_inner_steps": 5, "min_seconds": 2.0,
            "min_steps": 2, "load_before": [1.2, 1.0, 0.9], "load_after": [1.9, 1.2, 1.0],
            "rows": [{"algorithm": "reptile", "meta_batch": 8, "vectorized": _timing(53.0, 4, 8),
                      "sequential": _timing(25.0, 2, 8), "speedup": 53.0 / 25.0}],
            "warnings": {"fallbacks": {"aten::foo": ["reptile mb8"]}, "other": {}},
        },
        "memory": {
            "device": "cpu", "meta_batch": 4, "support": 4, "baseline_mib": 500.0,
            "fixed_mib": 10.0,
            "rows": [{"inner_steps": 1, "second_mib": 31.6, "first_mib": 25.1},
                     {"inner_steps": 10, "second_mib": 117.3, "first_mib": 31.6}],
            "warnings": no_warnings,
        },
        "figr": {
            "size": 32, "params_m": 35.9, "support": 4, "inner_steps": 10, "load_before": None,
            "load_after": None, "warnings": no_warnings,
            "rows": [{"algorithm": "reptile (FIGR: 1 task/step)", "meta_batch": 1,
                      "vectorized": None, "sequential": _timing(0.25, 1, 1), "speedup": None}],
        },
        "verdicts": {
            "speed": [{"name": "reptile", "meta_batch": 8, "speedup": 2.12, "target": 3.0,
                       "met": False},
                      {"name": "maml", "meta_batch": 8, "speedup": None, "target": 3.0,
                       "met": None}],
            "memory": [{"name": "second-order MAML", "steps": [1, 10], "total_mib": [31.6, 117.3],
                        "above_fixed": True, "grown_mib": [21.6, 107.3],
                        "per_step_mib": [[1, 10, 9.5]], "superlinear": False, "target": True}],
        },
    }  # fmt: skip
    table = meta(data)
    assert "Test CPU, 2 thread(s) (inter-op 2), torch 2.0" in table
    assert "| reptile | 8 | 53.00 | 25.00 | 2.12x | 4 / 2 | 0.15 / 0.32 |" in table
    assert "- vmap fallback (no batching rule) for `aten::foo`: reptile mb8" in table
    assert "| 0 | 10.0 | — | 10.0 | — | 0 | 0 | 1.00 |" in table
    assert "| 10 | 117.3 | 3.71 | 31.6 | 1.26 | 107.3 (4.97x) | 21.6 (1.43x) | 3.71 |" in table
    assert "| reptile (FIGR: 1 task/step) | 1 | (same path) | 0.25 | — | — / 1 | 4.00 |" in table
    assert "at meta-batch 8: 2.12x (target >= 3x): NOT MET" in table
    assert "- maml at meta-batch 8: not measured in this mode" in table
    assert "21.6 -> 107.3 MiB (4.97x for 10x the steps); added per step 1->10: 9.5" in table
    assert table.endswith(": met (no worse than linear)")


def test_speed_renders_peaks_variants_and_figrs_loop() -> None:
    from render_results import speed

    row = {"variant": "bf16", "first_s": 3.4, "median_s": 2.39, "it_per_s": 1 / 2.39,
           "vs_32": 1.59, "gflops": 422.0, "fp32_peak_pct": 82.0,
           "bf16_peak_pct": 37.8}  # fmt: skip
    data = {
        "bench": "speed", "quick": False, "cpu": "Test CPU", "threads": 2, "torch": "2.0",
        "reuse_memory": True, "load": [0.5, 0.4, 0.3], "rounds": 5,
        "peaks": {"conv fp32": 515.0, "conv bf16": 1116.0},
        "setups": [{"name": "FIGR (32x32, w64)", "weights": 35_940_000,
                    "gflop_per_episode": 1009.0, "rows": [row]}],
        "figr_own": [{"loop": "FIGR's own loop (fp32)", "median_s": 5.48, "min_s": 5.4,
                      "max_s": 5.6, "speedup": 1.0},
                     {"loop": "metaaug bf16", "median_s": 2.43, "min_s": 2.4, "max_s": 2.5,
                      "speedup": 5.48 / 2.43}],
        "profile": {"bf16": [{"kind": "convolution", "ms": 1050.0, "share_pct": 44.0}]},
        "layers": [{"layer": "D 128->256", "input": "12x16x16", "gflop": 5.03,
                    "rates": [{"gflops": g, "peak_pct": p} for g, p in
                              ((450, 87), (480, 93), (900, 81), (970, 87))]}],
    }  # fmt: skip
    table = speed(data)
    assert "Test CPU, 2 thread(s), torch 2.0, freed memory reused" in table
    assert "| conv bf16 | 1116 |" in table
    assert ("| FIGR (32x32, w64) (35.94M weights) | bf16 | 3.40 s | 2390 ms | 0.4 | 1.59x | 422 "
            "| 82% | 38% |") in table  # fmt: skip
    assert "| | FLOPs per episode: 1009.0 GFLOP |" in table
    assert "| metaaug bf16 | 2.43 s | 2.40 s | 2.50 s | 2.26x |" in table
    assert "| convolution | 1050 ms | 44% |" in table
    assert (
        "| D 128->256 | 12x16x16 | 5.03 | 450 (87%) | 480 (93%) | 900 (81%) | 970 (87%) |" in table
    )
    # without a FIGR checkout, and in a --quick run, those tables are left out
    quick = speed({**data, "quick": True, "figr_own": None, "profile": {}, "layers": []})
    assert "FIGR's own" not in quick and "op kind" not in quick and "D 128->256" not in quick


def test_precision_compares_the_two_precisions_paired_over_seeds() -> None:
    from bench_precision import compare
    from render_results import precision

    fp32, bf16 = [10.0, 12.0, 14.0], [10.5, 12.5, 14.4]
    cell = compare(fp32, bf16)
    assert cell["paired"]["per_seed"] == pytest.approx([0.5, 0.5, 0.4])
    assert cell["bf16_higher"] == 3 and cell["pairs"] == 3
    assert cell["p_t"] == pytest.approx(stats.ttest_rel(bf16, fp32).pvalue)
    one = compare([1.0], [1.1])  # one seed: no interval, no test
    assert one["paired"]["ci95"] == [None, None] and one["p_t"] is None
    data = {
        "bench": "precision", "quick": False, "seeds": [0, 1, 2], "threads": 2,
        "cpu": "Test CPU", "torch": "2.0",
        "datasets": {"digits": {
            "seeds": [0, 1, 2], "main_arm": "reptile", "table": {"reptile": {"fid": cell}},
            "wall_s": {"32": compare([20.0, 21.0, 22.0], fp32)["fp32"],
                       "bf16": compare([20.0, 21.0, 22.0], fp32)["fp32"]},
            "verdicts": [{"metric": "fid", "holds_zero": False}],
        }},
    }  # fmt: skip
    table = precision(data)
    diff = _interval_text([0.5, 0.5, 0.4], "{:+.3g}")
    row = (f"| reptile | fid | {_interval_text(fp32, '{:.3g}')} | "
           f"{_interval_text(bf16, '{:.3g}')} | {diff} | 3/3 | {cell['p_t']:.2g} |")  # fmt: skip
    assert row in table
    assert "| wall (s) | | 21 [19, 23] | 21 [19, 23] |" in table
    assert "the paired 95% interval holds 0 for none; not for fid." in table


def test_quality_has_intervals_over_seeds_and_pairs_each_arm_with_scratch() -> None:
    from bench_quality import ALGOS
    from bench_quality import summarize as summarize_quality
    from render_results import quality

    def run(algo: str, seed: int) -> dict:
        fid = {10: 100.0 + seed, 50: 50.0 + 2 * seed + (algo == "scratch")}
        curve = {str(s): {"fid": v, "fidelity": 0.1 * seed, "novel_fidelity": None}
                 for s, v in fid.items()}  # fmt: skip
        return {"curves": {algo: curve},
                "results": {"copy_shots": {"fid": 9.0 + seed, "fidelity": 1.0}}}  # fmt: skip

    reports = {algo: [run(algo, s) for s in (0, 1, 2)] for algo in ALGOS}
    summary = summarize_quality(reports, [10, 50])
    # novel_fidelity was not measured: left out, not a column of nulls
    assert summary["metrics"] == ["fidelity", "fid"]
    assert summary["paired_metrics"] == ["fidelity", "fid"]
    assert summary["table"]["reptile"]["50"]["fid"]["per_seed"] == pytest.approx([50, 52, 54])
    assert summary["paired"]["reptile"]["50"]["fid"]["per_seed"] == pytest.approx([-1, -1, -1])
    assert "scratch" not in summary["paired"]
    data = {"bench": "quality", "dataset": "omniglot", "iterations": 200, "seeds": [0, 1, 2],
            "targets": {"0": ["A/c1"], "1": ["A/c2"], "2": ["B/c1"]}, "cpu": "Test CPU",
            "threads": 1, "torch": "2.0", "steps": [10, 50], "arms": list(ALGOS),
            "reference": "scratch", **summary}  # fmt: skip
    table = quality(data)
    assert "| fid | @10 | @50 |" in table
    assert f"| reptile | {_interval_text([100, 101, 102], '{:.3g}')} | " in table
    assert f"| copy_shots | {_interval_text([9, 10, 11], '{:.3g}')} | " in table
    assert "| fid - scratch | @10 | @50 |" in table
    assert "| maml | +0 [+0, +0] | -1 [-1, -1] |" in table
    assert "seed 0: A/c1; seed 1: A/c2" in table


def test_an_empty_block_is_filled_and_the_repository_matches_its_json(tmp_path: Path) -> None:
    # a bench not run yet leaves its block empty; its first JSON fills it, and again the same
    doc = "a\n<!-- results:train -->\n<!-- /results:train -->\nb\n"
    once = fill(doc, "train", "| t |")
    assert once == "a\n<!-- results:train -->\n| t |\n<!-- /results:train -->\nb\n"
    assert fill(once, "train", "| t |") == once
    script = REPO / "scripts" / "render_results.py"
    check = subprocess.run([sys.executable, str(script), "--check"], capture_output=True,
                           text=True, cwd=REPO)  # fmt: skip
    assert check.returncode == 0, check.stderr


def test_the_diversity_weight_table_marks_each_weight_against_the_rule() -> None:
    """A weight qualifies when its novel_fidelity is at least weight 0's less the tolerance;
    variety is diversity_fake over diversity_real; no weight chosen says the design leaves."""
    from render_results import diversity_weight

    def reading(nf: float, fake: float) -> dict[str, float]:
        return {"novel_fidelity": nf, "copies": 0.05, "diversity_fake": fake,
                "diversity_real": 8.0, "fid": 40.0}  # fmt: skip

    data = {"seed": 0, "classes": "meta-val", "cpu": "x", "threads": 1, "class_loss": 1.0,
            "tolerance": 0.05, "chosen": 0.1,
            "reading": {"0": reading(0.35, 6.0), "0.1": reading(0.30, 8.0),
                        "0.3": reading(0.2999, 9.0)}}  # fmt: skip
    table = diversity_weight(data)
    assert ">= 0.300 (weight 0's less 0.05)" in table
    assert "| 0 | 0.350 | 0.050 | 0.75 | 40.0 | (reference) |" in table
    assert "| 0.1 | 0.300 | 0.050 | 1.00 | 40.0 | yes |" in table
    assert "| 0.3 | 0.300 | 0.050 | 1.12 | 40.0 | no |" in table
    assert table.endswith("Chosen: **0.1**.")
    assert diversity_weight({**data, "chosen": None}).endswith("leaves the ablation.")


def test_the_ablation_table_reads_each_variant_against_its_reference() -> None:
    from ablation_generation import figures, summary
    from recipe_summary import interval
    from render_results import ablation

    variants = ("gan", "gan_f", "gan_w", "gan_fw")

    def cell(*per_seed: float) -> dict:
        return interval(list(per_seed))

    plain = {v: {"vs_none": cell(0.01, 0.03)} for v in variants}
    plain |= {f"classic+{v}": {"vs_classic": cell(-0.02, 0.0)} for v in variants}
    protonet = {v: {"vs_none": cell(-0.05, -0.03)} for v in variants}
    data = {"bench": "ablation", "stage": "val", "seeds": [0, 2], "threads": 1, "workers": 2,
            "cpu": "x", "class_loss": 1.0, "weight": 0.25,
            "designs": {"dagan": {"5": {"plain": plain, "protonet": protonet}}},
            "classic_plus_gain": {"dagan / gan_w": cell(-0.01, 0.01)},
            "choice": "dagan / gan_w"}  # fmt: skip
    # the design's images over seeds 0 and 2: novel_fidelity 0.4 and 0.5, scratch 0.0 on
    # both, pretrain 0.3 on both, copy_shots 0.0
    copy = [_arm(0.0, 1.0)] * 2
    made = {0: figures(_train_report([_arm(0.4, 0.1)] * 2, copy)),
            2: figures(_train_report([_arm(0.5, 0.1)] * 2, copy))}  # fmt: skip
    data["generation"] = {"dagan": summary(made)}
    data["fewshot_goals"] = [{"goal": "plain, 5 shot(s): g", "mean": 1.5, "ci95": [0.5, 2.5],
                              "met": True}]  # fmt: skip
    text = ablation(data)
    assert "- [x] plain, 5 shot(s): g: +1.5 [+0.5, +2.5]" in text
    half = stats.t.ppf(0.975, df=1) * stats.tstd([1.0, 3.0]) / 2**0.5
    assert f"| dagan | gan_f | +2.0 [{2 - half:+.1f}, {2 + half:+.1f}] | -1.0 [" in text
    assert "Episodes of meta-val (to choose) classes; seeds 0, 2" in text
    assert "threads per process 1, worker processes per run 2; CPUs: x." in text
    assert "**dagan / gan_w**, +0.0 [" in text
    # each baseline has its row; a goal the interval misses says so
    assert [r.split(" | ")[1] for r in text.splitlines() if r.startswith("| dagan | ")][-4:] == [
        "gan", "scratch", "pretrain", "copy_shots"]  # fmt: skip
    above = stats.t.ppf(0.975, df=1) * stats.tstd([0.4, 0.5]) / 2**0.5
    assert f"novel_fidelity above pretrain (the paired 95% interval's low end > 0): " \
        f"{0.15 - above:.2f} (missed)" in text  # fmt: skip
    assert "novel_fidelity above scratch (the paired 95% interval's low end > 0): " in text
    # at test, a design that shows one mechanism alone runs `gan` only: no rows for the rest
    only = {"plain": {k: plain[k] for k in ("gan", "classic+gan")}, "protonet": protonet}
    data["designs"]["fusion"] = {"5": only}
    text = ablation({**data, "stage": "test"})
    assert "| fusion | gan |" in text and "| fusion | gan_f |" not in text
    assert "The choice made on meta-val, **dagan / gan_w**: its plain classic+variant" in text


def test_an_unfinished_bench_run_is_taken_up(tmp_path: Path) -> None:
    """A run folder an interrupted bench left is moved aside, never overwritten; a train run
    resumes from its last checkpoint, a fewshot run from its scored episodes, each from the
    newest attempt that kept any (`--root` benches rely on it)."""
    from bench_runs import JOURNAL, take_up

    from metaaug.fewshot import journal

    assert JOURNAL == journal.FILE
    run = tmp_path / "gan_seed0"
    (run / "checkpoints").mkdir(parents=True)
    (run / "checkpoints" / "last.pt").write_bytes(b"state")
    first = tmp_path / "gan_seed0.unfinished1"
    assert take_up(run) == [f"resume={first / 'checkpoints' / 'last.pt'}"]
    run.mkdir()  # a second interrupted attempt, before any checkpoint of its own
    assert take_up(run) == [f"resume={first / 'checkpoints' / 'last.pt'}"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["gan_seed0.unfinished1",
                                                          "gan_seed0.unfinished2"]  # fmt: skip
    assert (first / "checkpoints" / "last.pt").read_bytes() == b"state"
    episodes = tmp_path / "seed0_5shot"
    for attempt in range(1, 12):  # the 11th attempt is newer than the 2nd, not older
        (episodes / JOURNAL).parent.mkdir()
        (episodes / JOURNAL).write_text(str(attempt))
        assert take_up(episodes) == [f"resume={tmp_path / f'seed0_5shot.unfinished{attempt}'}"]
    assert take_up(tmp_path / "never_started") == []


def test_an_unfinished_run_is_kept_for_the_next_session_and_goes_on_there(tmp_path: Path) -> None:
    """A 600-episode run longer than a session: the episodes it scored are kept in the store
    (whole lines only, the CPU in the header), never replaced by fewer; a later session on the
    same CPU goes on from them (metaaug reads the journal as its own), another CPU starts over."""
    from bench_runs import keep_unfinished, restore_unfinished, take_up

    from metaaug.fewshot import journal

    def scored(run_dir: Path, n: int, torn: bool = False, weights: dict | None = None) -> None:
        weights = {"arms.gan": "0123456789abcdef"} if weights is None else weights
        run_dir.mkdir(parents=True)
        with journal.opened(run_dir / journal.FILE, {"seed": 0, "weights": weights}, {}) as j:
            part = j.part("episodes")
            for i in range(n):
                part.record(i, ({"plain": {"none": i / 10}}, {}))
        if torn:
            with open(run_dir / journal.FILE, "a") as f:
                f.write('{"source": "episodes", "episo')

    old, store = tmp_path / "old" / "dagan_test_5shot", tmp_path / "kept.unfinished.jsonl"
    scored(old.with_name("dagan_test_5shot.unfinished1"), 3, torn=True)
    scored(old, 1)
    assert keep_unfinished(old, store, "EPYC (AVX2)") == 3
    scored(old.with_name("dagan_test_5shot.unfinished2"), 2)
    assert keep_unfinished(old, store, "EPYC (AVX2)") == 3  # never fewer
    defines, taken = journal.read(store)
    assert defines == {"seed": 0, "weights": {"arms.gan": "0123456789abcdef"}}
    assert sorted(taken["episodes"]) == [0, 1, 2]
    assert taken["episodes"][2] == ({"plain": {"none": 0.2}}, {})

    new = tmp_path / "new" / "dagan_test_5shot"
    assert "was scored on EPYC (AVX2), not here on Xeon (AVX512): dagan_test_5shot starts over" in (
        restore_unfinished(store, new, "Xeon (AVX512)")
    )
    assert take_up(new) == []
    scored(new, 1)  # this session's own attempt, newer but with fewer episodes
    assert "goes on from the 3 episodes kept at" in restore_unfinished(store, new, "EPYC (AVX2)")
    resume = take_up(new)
    assert resume == [f"resume={new.with_name('dagan_test_5shot.unfinished1')}"]
    assert journal.read(Path(resume[0].removeprefix("resume=")) / journal.FILE)[1] == taken
    assert restore_unfinished(store, new, "EPYC (AVX2)") is None  # already here

    # episodes of a metaaug that did not record its weights cannot be checked: not taken up
    older, unchecked = tmp_path / "older" / "run", tmp_path / "unchecked.unfinished.jsonl"
    scored(older, 2, weights={})
    text = (older / journal.FILE).read_text().replace(', "weights": {}', "")
    (older / journal.FILE).write_text(text)
    assert keep_unfinished(older, unchecked, "EPYC (AVX2)") == 2
    later = tmp_path / "later" / "run"
    assert "does not say which weights scored it: run starts over" in (
        restore_unfinished(unchecked, later, "EPYC (AVX2)")
    )
    assert take_up(later) == []


def test_a_kept_run_reads_back_with_its_settings_and_refuses_others(tmp_path: Path) -> None:
    """A bench spread over sessions keeps each finished run in the repository: what it reads
    back is the run's per-episode figures to 6 decimals, and a run measured with other
    settings than those asked for stops the bench with a line naming them."""
    from bench_ablation import load
    from bench_runs import keep, kept

    report = {"per_episode": {"plain": {"none": [0.8266666666, 0.4]}},
              "kept": {"gan_f": [0.55, float("nan")]}, "seconds": 12.345678,
              "objective": 0.5}  # fmt: skip
    path = tmp_path / "seed0" / "dagan_val_1shot.json"
    settings = {"class_loss": 1.0, "weight": 0.25, "episodes": 200, "quick": False}
    keep(path, report, {**settings, "cpu": "x"})
    back = kept(path)
    assert back["per_episode"] == {"plain": {"none": [0.826667, 0.4]}}
    assert back["kept"]["gan_f"][0] == 0.55 and back["kept"]["gan_f"][1] != back["kept"]["gan_f"][1]
    assert back["seconds"] == 12.3 and back["cpu"] == "x" and "objective" not in back
    assert load(path, settings) == back
    with pytest.raises(SystemExit, match=r"other \['episodes', 'weight'\]: ask for its settings"):
        load(path, {**settings, "weight": 0.5, "episodes": 600})
    assert kept(tmp_path / "never_kept.json") is None


def test_the_ablation_tests_each_mechanism_alone_and_the_choice_val_made() -> None:
    """Val runs every design x variant to choose among; test runs those that show each
    mechanism alone (from dagan as made) and the design val chose, with all its variants."""
    from bench_ablation import DESIGNS, VARIANTS, plan

    assert plan("val", None) == dict.fromkeys(DESIGNS, VARIANTS)
    alone = {"dagan": VARIANTS, "dagan+class": ("gan",), "fusion": ("gan",)}
    assert plan("test", "dagan / gan_w") == alone
    assert plan("test", "fusion / gan") == {**alone, "fusion": VARIANTS}
    assert plan("test", "fusion+class / gan_f") == {**alone, "fusion+class": VARIANTS}
    assert plan("test", "dagan+class+div / gan") == {**alone, "dagan+class+div": VARIANTS}
    # dagan's test runs are the same whatever val chooses, so they may start before it
    assert plan("test", None) == {"dagan": VARIANTS}


def test_the_ablation_test_stage_refuses_a_choice_made_with_other_settings(
    tmp_path: Path,
) -> None:
    """Test measures val's choice only with the class term, diversity and weight val chose
    with (a val JSON written before the diversity term is taken to have the one asked)."""
    from argparse import Namespace

    from bench_ablation import val_choice

    def asked(weight: float = 0.25, diversity: float = 1.0) -> Namespace:
        return Namespace(class_loss=1.0, diversity=diversity, weight=weight)

    path = tmp_path / "ablation_val.json"
    with pytest.raises(SystemExit, match="is missing: run --stage val first"):
        val_choice(path, asked())
    path.write_text(json.dumps({"choice": "fusion / gan_w", "class_loss": 1.0, "weight": 0.25}))
    assert val_choice(path, asked()) == "fusion / gan_w"
    with pytest.raises(SystemExit, match=r"--weight 0\.25: give those"):
        val_choice(path, asked(weight=0.5))
    path.write_text(json.dumps({"choice": "fusion / gan_w", "class_loss": 1.0, "weight": 0.25,
                                "diversity": 2.0}))  # fmt: skip
    with pytest.raises(SystemExit, match=r"--diversity 2\.0 --weight 0\.25: give those"):
        val_choice(path, asked())


def test_a_kept_run_is_asked_for_the_diversity_only_where_its_design_has_the_term() -> None:
    """Runs kept before gan.diversity existed stay valid: only dagan+class+div's settings
    name it, with the weight asked for."""
    from argparse import Namespace

    from bench_ablation import defined, overrides

    args = Namespace(class_loss=1.0, diversity=0.5)
    base = {"class_loss": 1.0, "weight": 0.25}
    assert defined("dagan+class", base, args) == base
    assert defined("dagan+class+div", base, args) == {**base, "diversity": 0.5}
    assert overrides("dagan+class+div", args) == ["gan.class_loss=1.0", "gan.diversity=0.5"]
    with pytest.raises(SystemExit, match="dagan\\+class\\+div needs --diversity"):
        defined("dagan+class+div", base, Namespace(class_loss=1.0, diversity=None))


def test_the_ablation_never_reuses_a_design_trained_with_another_weight(tmp_path: Path) -> None:
    """A train run left under --root by a bench with another gan.diversity (or class term) is
    refused, not measured as this design."""
    from argparse import Namespace

    from bench_ablation import trained

    run = tmp_path / "seed0" / "dagan+class+div"
    (run / "checkpoints").mkdir(parents=True)
    (run / "checkpoints" / "meta_init.pt").write_bytes(b"")
    (run / ".hydra").mkdir()
    (run / ".hydra" / "overrides.yaml").write_text("- gan.class_loss=1.0\n- gan.diversity=1.0\n")
    args = Namespace(root=tmp_path, recipe_runs=None, class_loss=1.0, diversity=0.1)
    with pytest.raises(SystemExit, match=r"trained without \['gan.diversity=0.1'\]: move it"):
        trained(args, None, 0, "dagan+class+div")
    assert trained(Namespace(**{**vars(args), "diversity": 1.0}), None, 0,
                   "dagan+class+div") == run  # fmt: skip


def test_the_ablation_table_names_the_kept_runs_cpus_threads_and_workers() -> None:
    """A stage's table reads runs kept in several sessions: its header names their CPUs,
    threads and worker processes, not those of the command that aggregated them."""
    from bench_ablation import provenance

    def run(cpu: str, workers: int) -> dict:
        return {"cpu": cpu, "threads": 1, "workers": workers}

    reports = {"dagan": {1: {0: run("B", 1), 2: run("A", 1)}, 5: {0: run("B", 2)}},
               "fusion": {1: {0: run("B", 1)}}}  # fmt: skip
    assert provenance(reports) == {"cpu": "A, B", "threads": "1", "workers": "1, 2"}


def test_the_ablation_reads_issue_22s_few_shot_goals_for_the_choice() -> None:
    """Each goal is a paired difference in points over seeds with its verdict: images alone
    against classic at 1 shot, classic+variant against classic (>= 1.0, interval above 0),
    and protonet's larger cost of the variant's two arms (<= 0.5)."""
    from ablation_goals import fewshot_goals

    def run(gain: float, cost: float) -> dict:
        plain = {"none": [0.5, 0.5], "classic": [0.6, 0.6], "gan_w": [0.59, 0.61],
                 "classic+gan_w": [0.6 + gain, 0.6 + gain]}  # fmt: skip
        proto = {"none": [0.9, 0.9], "classic": [0.9, 0.9], "gan_w": [0.9 - cost, 0.9 - cost],
                 "classic+gan_w": [0.9, 0.9]}  # fmt: skip
        return {"per_episode": {"plain": plain, "protonet": proto}}

    runs = {1: {0: run(0.01, 0.003), 2: run(0.03, 0.005)},
            5: {0: run(0.02, 0.0), 2: run(-0.01, 0.012)}}  # fmt: skip
    got = {g["goal"].split(":")[0]: g for g in fewshot_goals(runs, "gan_w")}
    assert list(got) == ["plain, 1 shot", "plain, 1 shot(s)", "plain, 5 shot(s)",
                         "protonet, 1 shot(s)", "protonet, 5 shot(s)"]  # fmt: skip
    # gan_w - classic: 0 on both seeds (-0.01, +0.01 per episode): as good as classic
    assert got["plain, 1 shot"]["mean"] == pytest.approx(0.0, abs=1e-9)
    assert got["plain, 1 shot"]["met"]
    # classic+gan_w - classic: +1 and +3 points; t(0.975, 1) * sd / sqrt(2)
    half = stats.t.ppf(0.975, df=1) * stats.tstd([1.0, 3.0]) / 2**0.5
    one = got["plain, 1 shot(s)"]
    assert one["mean"] == pytest.approx(2.0) and one["ci95"] == pytest.approx([2 - half, 2 + half])
    assert not one["met"]  # the interval over two seeds reaches below 0
    assert got["plain, 5 shot(s)"]["mean"] == pytest.approx(0.5)
    assert not got["plain, 5 shot(s)"]["met"]
    # gan_w costs 0.3 and 0.5 points (classic+gan_w nothing): 0.4 on average, met
    assert got["protonet, 1 shot(s)"]["mean"] == pytest.approx(-0.4)
    assert got["protonet, 1 shot(s)"]["met"]
    # 0.0 and 1.2: 0.6 on average, missed
    assert got["protonet, 5 shot(s)"]["mean"] == pytest.approx(-0.6)
    assert not got["protonet, 5 shot(s)"]["met"]


def test_the_ablation_shows_each_kept_run_with_its_episode_interval(tmp_path: Path) -> None:
    """Until a stage's table is complete, docs/results.md lists the runs kept so far: per run
    and variant, the paired differences in points over that seed's episodes."""
    from ablation_progress import progress
    from bench_runs import keep
    from render_results import ablation_runs

    plain = {"none": [0.4, 0.6, 0.5], "classic": [0.5, 0.6, 0.7], "gan_f": [0.5, 0.7, 0.6],
             "classic+gan_f": [0.6, 0.6, 0.9]}  # fmt: skip
    protonet = {"none": [0.8, 0.9, 1.0], "gan_f": [0.7, 0.9, 0.8]}
    report = {"per_episode": {"plain": plain, "protonet": protonet},
              "kept": {"gan_f": [0.5, 0.7, float("nan")]}, "seconds": 90.0}  # fmt: skip
    provenance = {"episodes": 3, "cpu": "Test CPU", "threads": 1, "workers": 2}
    keep(tmp_path / "seed2" / "fusion_val_5shot.json", report, provenance)
    keep(tmp_path / "seed0" / "fusion_val_5shot.json", report, provenance)
    keep(tmp_path / "seed0" / "dagan_test_5shot.json", report, provenance)  # another stage
    data = progress(tmp_path, "val")
    assert [(r["seed"], r["design"], r["shots"]) for r in data["runs"]] == [
        (0, "fusion", 5), (2, "fusion", 5)]  # fmt: skip
    row = data["runs"][0]["variants"]["gan_f"]
    # classic+gan_f - classic per episode: +0.1, 0, +0.2; mean 0.1, sd 0.1, t(0.975, 2) 4.303
    assert row["plain_classic_plus_vs_classic"]["mean"] == pytest.approx(0.1)
    assert row["plain_classic_plus_vs_classic"]["half_width"] == pytest.approx(
        stats.t.ppf(0.975, df=2) * 0.1 / 3**0.5)  # fmt: skip
    assert row["kept"] == pytest.approx(0.6)  # the episode with no share left out
    text = ablation_runs(data)
    assert "| fusion | 5 | 0 | gan_f | +10.0 ± 0.0 | +10.0 ± 24.8 | -10.0 ± 24.8 | 0.60 |" in text
    assert "not over seeds" in text and "3, 1.5, Test CPU" in text
    assert ablation_runs(progress(tmp_path / "none", "val")) == "(no run kept yet)"


def test_the_test_stage_reads_the_goals_over_seeds_once_three_are_kept(tmp_path: Path) -> None:
    """A test-stage design and shot count kept on three seeds is read against issue 22's
    goals over those seeds (the choice is fixed, so that is a result); on two it is not."""
    from ablation_progress import progress
    from bench_runs import keep
    from render_results import ablation_runs

    def report(gain: float) -> dict:
        plain = {"none": [0.5, 0.5], "classic": [0.6, 0.6], "gan_fw": [0.55, 0.55],
                 "classic+gan_fw": [0.6 + gain, 0.6 + gain]}  # fmt: skip
        proto = {"none": [0.9, 0.9], "classic": [0.9, 0.9], "gan_fw": [0.88, 0.88],
                 "classic+gan_fw": [0.9, 0.9]}  # fmt: skip
        return {"per_episode": {"plain": plain, "protonet": proto}, "kept": {}, "seconds": 60.0}

    provenance = {"episodes": 2, "cpu": "Test CPU", "threads": 1, "workers": 1}
    for seed, gain in ((0, 0.02), (2, 0.03), (3, 0.025)):
        keep(tmp_path / f"seed{seed}" / "div_test_1shot.json", report(gain), provenance)
    for seed in (0, 2):
        keep(tmp_path / f"seed{seed}" / "div_test_5shot.json", report(0.05), provenance)
    data = progress(tmp_path, "test")
    assert [(r["design"], r["shots"], r["seeds"]) for r in data["over_seeds"]] == [
        ("div", 1, [0, 2, 3])]  # fmt: skip
    goals = {g["goal"].split(":")[0]: g for g in data["over_seeds"][0]["goals"]}
    # classic+gan_fw - classic: +2, +3, +2.5 points; t(0.975, 2) * 0.5 / sqrt(3)
    half = stats.t.ppf(0.975, df=2) * 0.5 / 3**0.5
    gain = goals["plain, 1 shot(s)"]
    assert gain["mean"] == pytest.approx(2.5) and gain["ci95"] == pytest.approx(
        [2.5 - half, 2.5 + half])  # fmt: skip
    assert gain["met"] and not goals["plain, 1 shot"]["met"]  # alone: 5 points below classic
    assert goals["protonet, 1 shot(s)"]["mean"] == pytest.approx(-2.0)
    text = ablation_runs(data)
    assert "**div** / gan_fw, 1 shot(s), seeds 0, 2, 3:" in text
    assert "- [x] plain, 1 shot(s): classic+gan_fw above classic" in text
    assert "5 shot(s), seeds" not in text  # two seeds: no interval over seeds
    assert progress(tmp_path, "val")["over_seeds"] == []


def _train_report(gan: list[dict], copy: list[dict], scratch: float = 0.0) -> dict:
    """A train run's metrics.json as `figures` reads it: one target per entry; scratch at
    novel_fidelity `scratch` and pretrain at 0.3 on every target."""
    targets = [{"class_name": f"Latin/character{i}",
                "results": {"reptile": g, "copy_shots": c, "scratch": _arm(scratch, 0.0),
                            "pretrain": _arm(0.3, 0.0)}}
               for i, (g, c) in enumerate(zip(gan, copy, strict=True))]  # fmt: skip
    return {"objective": {"arm": "reptile"}, "targets": targets}


def _arm(novel: float, copies: float, ceiling: float = 0.8) -> dict:
    return {"fidelity": novel + copies, "novel_fidelity": novel, "copies": copies,
            "ceiling": ceiling, "memorization": 0.5, "fid": 50.0}  # fmt: skip


def test_a_designs_images_are_read_over_seeds_paired_with_copy_shots() -> None:
    """The goal's generation figures: each seed's mean over its targets, the interval over
    seeds, novel_fidelity paired with each baseline per target, and the goals against the
    issue's thresholds."""
    from ablation_generation import figures, summary

    copy = [_arm(0.0, 1.0), _arm(0.0, 1.0)]
    kept = {0: figures(_train_report([_arm(0.5, 0.05), _arm(0.3, 0.15)], copy, 0.1)),
            1: figures(_train_report([_arm(0.6, 0.0), {**_arm(0.4, 0.1), "fid": None}], copy)),
            2: figures(_train_report([_arm(0.4, 0.1), _arm(0.4, 0.1)], copy))}  # fmt: skip
    assert kept[0]["targets"] == ["Latin/character0", "Latin/character1"]
    got = summary(kept)
    novel = got["arms"]["gan"]["novel_fidelity"]
    # per-seed means 0.4, 0.5, 0.4: mean 13/30, sd 0.0577, t(0.975, 2) 4.303
    half = stats.t.ppf(0.975, df=2) * (1 / 300) ** 0.5 / 3**0.5
    assert novel["mean"] == pytest.approx(13 / 30)
    assert novel["ci95"] == pytest.approx([13 / 30 - half, 13 / 30 + half])
    assert got["arms"]["gan"]["fid"]["mean"] == pytest.approx(50.0)  # a missing FID left out
    assert got["novel_fidelity_vs"]["copy_shots"]["mean"] == pytest.approx(13 / 30)
    # against scratch, per seed 0.4 - 0.1, 0.5 - 0, 0.4 - 0: mean 0.4, sd 0.1
    scratch = got["novel_fidelity_vs"]["scratch"]
    half_s = stats.t.ppf(0.975, df=2) * 0.1 / 3**0.5
    assert scratch["mean"] == pytest.approx(0.4)
    assert scratch["ci95"] == pytest.approx([0.4 - half_s, 0.4 + half_s])
    # against pretrain (0.3 everywhere): per seed +0.1, +0.2, +0.1, the low end below 0
    pretrain = got["novel_fidelity_vs"]["pretrain"]
    assert pretrain["mean"] == pytest.approx(13 / 30 - 0.3)
    goals = {g["goal"].split(" (")[0]: g for g in got["goals"]}
    ratio = goals["novel_fidelity >= 0.6 x ceiling"]
    assert ratio["value"] == pytest.approx(13 / 30 / 0.8) and not ratio["met"]
    copies = goals["copies <= 0.1"]
    assert copies["value"] == pytest.approx(0.25 / 3) and copies["met"]
    assert goals["novel_fidelity above copy_shots"]["met"]
    assert goals["novel_fidelity above scratch"]["met"]
    assert goals["novel_fidelity above pretrain"]["value"] == pytest.approx(
        13 / 30 - 0.3 - half
    )  # the same spread as against copy_shots
    assert not goals["novel_fidelity above pretrain"]["met"]


def test_the_ablation_lists_each_designs_kept_images(tmp_path: Path) -> None:
    """The images kept per seed and design show in the val progress table with their means."""
    from ablation_generation import figures
    from ablation_progress import progress
    from render_results import ablation_runs

    got = figures(_train_report([_arm(0.5, 0.05), _arm(0.3, 0.15)], [_arm(0.0, 1.0)] * 2))
    (tmp_path / "seed1").mkdir()
    (tmp_path / "seed1" / "fusion_targets.json").write_text(
        json.dumps({"class_loss": 1.0, "cpu": "Test CPU", "threads": 1, **got})
    )
    data = progress(tmp_path, "val")
    assert data["runs"] == [] and data["images"][0]["design"] == "fusion"
    # the same images whatever the stage: listed once, beside the val stage's runs
    assert progress(tmp_path, "test")["images"] == []
    text = ablation_runs(data)
    # fidelity 0.55/0.45, novel 0.4, copies 0.1, ceiling 0.8; scratch novel 0.0, pretrain
    # 0.3; copy_shots fidelity 1.0
    row = "| fusion | 1 | 2 | 0.50 | 0.40 | 0.10 | 0.80 | 0.00 | 0.30 | 1.00 | 50 | Test CPU |"
    assert row in text
    # one kept before the baselines were measured there: blanks, not zeros
    del got["arms"]["scratch"], got["arms"]["pretrain"]
    (tmp_path / "seed2").mkdir()
    (tmp_path / "seed2" / "dagan_targets.json").write_text(
        json.dumps({"class_loss": 1.0, "cpu": "Test CPU", "threads": 1, **got})
    )
    text = ablation_runs(progress(tmp_path, "val"))
    assert "| dagan | 2 | 2 | 0.50 | 0.40 | 0.10 | 0.80 |  |  | 1.00 | 50 | Test CPU |" in text


def test_a_figure_names_the_cpu_with_the_instructions_torch_runs_on() -> None:
    """Two machines both called "AMD EPYC" differ by AVX-512 BF16: the name says which."""
    import torch
    from machine import cpu_name, described

    assert described("AMD EPYC", "AVX512", True, False) == "AMD EPYC (AVX512, BF16)"
    assert described("AMD EPYC", "AVX2", False, False) == "AMD EPYC (AVX2)"
    assert described("Intel Xeon", "AVX512", True, True) == "Intel Xeon (AVX512, BF16, AMX)"
    here = cpu_name()
    assert f"({torch.backends.cpu.get_cpu_capability()}" in here and not here.startswith("(")


def test_the_classifier_bench_says_which_classifier_misses_its_two_minutes() -> None:
    from render_results import classifiers

    def iv(*per_seed: float) -> dict:
        m = sum(per_seed) / len(per_seed)
        return {"mean": m, "ci95": [m - 1, m + 1], "per_seed": list(per_seed)}

    figures = {"domain_s": iv(14, 16), "domain_accuracy": iv(0.76, 0.78),
               "domain_classes": iv(86, 86), "fidelity_s": iv(128, 132),
               "fidelity_ceiling": iv(0.8, 0.9), "fidelity_classes": iv(136, 136)}  # fmt: skip
    data = {"cpu": "EPYC (AVX2)", "threads": 2, "torch": "2.x", "seeds": [0, 2], "goal_s": 120.0,
            "extra": [], "settings": {"omniglot (32x32)": figures}}  # fmt: skip
    text = classifiers(data)
    assert "EPYC (AVX2), 2 thread(s)" in text and "smoke" not in text
    assert "| omniglot (32x32) | domain | 86, 86 | 15 [14, 16] | 0.770 [-0.230, 1.770]" in text
    assert text.rstrip().endswith("(mean ceiling, val and test classes) | missed by 10 s |")
    assert "[-0.230, 1.770] (held-out meta-train rows) | met |" in text


def test_the_diversity_weight_is_the_largest_that_keeps_the_class() -> None:
    """scripts/diversity_weight.py: the validation read as the mean of the last two checks;
    the largest weight within the tolerance of weight 0's novel_fidelity, or none."""
    from diversity_weight import chosen, validation

    check = {"fidelity": 0.5, "copies": 0.0, "diversity_fake": 8.0, "diversity_real": 9.0,
             "fid": 50.0}  # fmt: skip
    history = {"2000": {**check, "novel_fidelity": 0.9}, "4000": {**check, "novel_fidelity": 0.4},
               "6000": {**check, "novel_fidelity": 0.3}}  # fmt: skip
    assert validation({"validation": {"history": history}})["novel_fidelity"] == pytest.approx(0.35)
    reading = {0.0: 0.35, 0.03: 0.36, 0.1: 0.31, 0.3: 0.29}
    as_read = {w: {"novel_fidelity": v} for w, v in reading.items()}
    assert chosen(as_read, 0.05) == 0.1
    assert chosen({**as_read, 0.1: {"novel_fidelity": 0.2}}, 0.05) == 0.03
    assert chosen({0.0: {"novel_fidelity": 0.35}, 0.3: {"novel_fidelity": 0.1}}, 0.05) is None


def test_generate_s_filter_is_read_per_seed_and_paired_per_target() -> None:
    """scripts/generate_filter.py: a seed's mean over its targets, then over seeds; kept - all
    paired per target, a target with nothing kept left out of it."""
    from generate_filter import summary
    from render_results import generate_filter

    def row(seed: int, kept: float, all_: float, kept_fid: float, dropped: float) -> dict:
        return {"seed": seed, "kept": kept, "fidelity_all": all_, "fidelity_kept": kept_fid,
                "fidelity_dropped": dropped}  # fmt: skip

    nan = float("nan")
    rows = [row(0, 0.5, 0.5, 0.7, 0.3), row(0, 0.0, 0.2, nan, 0.2),
            row(1, 0.5, 0.4, 0.6, 0.2), row(2, 0.5, 0.3, 0.4, 0.2)]  # fmt: skip
    got = summary(rows)
    assert got["seeds"] == [0, 1, 2] and got["targets"] == [2, 1, 1]
    diff = [0.2, 0.2, 0.1]  # seed 0: only its first target kept anything
    assert got["kept_minus_all"]["per_seed"] == pytest.approx(diff)
    half = stats.t.ppf(0.975, 2) * stats.sem(diff)
    mean = sum(diff) / 3
    assert got["kept_minus_all"]["ci95"] == pytest.approx([mean - half, mean + half])
    assert got["fidelity_all"]["per_seed"] == pytest.approx([0.35, 0.4, 0.3])
    table = generate_filter({"cpu": "CPU", "threads": 1, "torch": "2", "num_images": 300,
                             "designs": {"fusion": got}, "pooled": got})  # fmt: skip
    assert "| fusion | 0 (2), 1 (1), 2 (1) | 0.42 [" in table  # kept: (0.25 + 0.5 + 0.5) / 3
    assert f"| {mean:+.2f} [{mean - half:+.2f}, {mean + half:+.2f}] |" in table
