"""Render the results tables of docs/results.md from the JSON the benchmarks wrote
(`make results`). A table sits between `<!-- results:NAME -->` and `<!-- /results:NAME -->`,
NAME being a file docs/results/NAME.json; the text around it is left as it is, so no figure in
a table is typed by hand.

    python scripts/render_results.py            # every docs/results/*.json into docs/results.md
    python scripts/render_results.py --check    # exit 1 if a table is not what its JSON gives
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
DOC = REPO / "docs" / "results.md"
DATA = REPO / "docs" / "results"


def _num(value: float | None, fmt: str) -> str:
    return "n/a" if value is None else fmt.format(value)


def _cell(entry: dict[str, Any], fmt: str) -> str:
    """mean [low, high] over seeds ("(1 seed)" where there is no interval)."""
    low, high = entry["ci95"]
    if entry["mean"] is None:
        return "n/a"
    if low is None:
        return f"{_num(entry['mean'], fmt)} (1 seed)"
    return f"{_num(entry['mean'], fmt)} [{_num(low, fmt)}, {_num(high, fmt)}]"


FORMATS = {
    "fidelity": "{:.2f}",
    "novel_fidelity": "{:.2f}",
    "copies": "{:.2f}",
    "ceiling": "{:.2f}",
    "memorization": "{:.2f}",
    "fid": "{:.3g}",
    "kid": "{:.3g}",
    "is": "{:.3g}",
}


def _arm_table(data: dict[str, Any], step: str, cols: tuple[str, ...]) -> list[str]:
    """One row per arm of a recipe-shaped summary at `step`: mean [95% interval over seeds]."""
    lines = ["| arm | " + " | ".join(cols) + " |", "|---" * (len(cols) + 1) + "|"]
    for arm in data["arms"]:
        row = data["table"][arm][step]
        lines.append(f"| {arm} | " + " | ".join(_cell(row[k], FORMATS[k]) for k in cols) + " |")
    return lines


def _paired_table(data: dict[str, Any]) -> list[str]:
    """The main arm minus each other arm of a recipe-shaped summary, paired per target."""
    main = data["main_arm"]
    lines = [f"Paired differences, {main} minus each arm (same targets, shots and noise; "
             "per-seed mean of the per-target differences, [95% interval over seeds]):", "",
             "| arm | novel_fidelity | fidelity | fid |", "|---|---|---|---|"]  # fmt: skip
    for other, diff in data["paired"].items():
        lines.append(f"| {other} | " + " | ".join(
            _cell(diff[k], "{:+.2f}" if k != "fid" else "{:+.3g}")
            for k in ("novel_fidelity", "fidelity", "fid")) + " |")  # fmt: skip
    return lines


def _goal_lines(data: dict[str, Any]) -> list[str]:
    lines = []
    for goal in data["goals"]:
        value = "n/a" if goal["value"] is None else f"{goal['value']:.3f}"
        lines.append(f"- [{'x' if goal['met'] else ' '}] {goal['goal']}: {value}")
    return lines


RECIPE_COLUMNS = ("novel_fidelity", "fidelity", "copies", "ceiling", "memorization", "fid")


def recipe(data: dict[str, Any]) -> str:
    """The recipe's table at its goal step, the paired differences and the goals."""
    step = str(data["goal_step"])
    seeds = ", ".join(map(str, data["seeds"]))
    per_seed = len(next(iter(data["splits"].values()))["targets"])
    lines = [
        f"`experiment={data['experiment']}`, split by {data['split_by']}, seeds {seeds} "
        f"(each: split, initialization and noise), {per_seed} "
        f"targets per seed, {data['shots']} shots, {data['meta_iterations']} meta-iterations, "
        f"{step} fine-tune steps; threads per seed {data['threads_per_seed']}, {data['cpu']}. "
        "Mean over seeds of each seed's mean over its targets, [95% interval over seeds].",
        "",
        *_arm_table(data, step, RECIPE_COLUMNS),
        "",
        *_paired_table(data),
        "",
        "Goals:",
        "",
        *_goal_lines(data),
    ]
    return "\n".join(lines)


def _points(entry: dict[str, Any]) -> dict[str, Any]:
    """An accuracy entry (mean, ci95) in points instead of fractions."""
    scale = lambda v: None if v is None else 100 * v  # noqa: E731
    return {**entry, "mean": scale(entry["mean"]), "ci95": [scale(v) for v in entry["ci95"]]}


def fewshot(data: dict[str, Any]) -> str:
    """Accuracy per shots, learner and arm over seeds, and each arm against none (paired)."""
    seeds = ", ".join(map(str, data["seeds"]))
    workers = f", {data['workers']} worker process(es)" if "workers" in data else ""
    lines = [
        f"Seeds {seeds} (each: split, GAN, backbone and episodes); threads {data['threads']}"
        f"{workers}, {data['cpu']}. Accuracy in points: mean over seeds [95% interval over "
        "seeds], the largest per-seed episode interval (±), and the paired difference against "
        "none [95% interval over seeds].",
    ]
    for shots, table in data["shots"].items():
        header = "| learner | arm | accuracy | episode ± | vs none |"
        lines += ["", f"**{shots} shot(s)**"]
        if shots in data.get("seconds", {}):
            minutes = ", ".join(f"{s / 60:.1f}" for s in data["seconds"][shots].values())
            lines.append(f"(minutes per run of the episodes, seed by seed: {minutes})")
        lines += ["", header, "|---|---|---|---|---|"]
        for learner, arms in table.items():
            for arm, cell in arms.items():
                scaled, diff = _points(cell), _points(cell["vs_none"])
                episode = max(cell["episode_ci_half_width"])
                versus = "" if arm == "none" else _cell(diff, "{:+.1f}")
                lines.append(f"| {learner} | {arm} | {_cell(scaled, '{:.1f}')} | "
                             f"{100 * episode:.1f} | {versus} |")  # fmt: skip
    return "\n".join(lines)


def _seeds(data: dict[str, Any]) -> str:
    return ", ".join(map(str, data["seeds"]))


def _where(data: dict[str, Any]) -> str:
    """The machine a figure was measured on: CPU, threads and torch (a speed figure names all
    three)."""
    return f"{data['cpu']}, {data['threads']} thread(s), torch {data['torch']}"


TRAIN_TIMING = (
    ("wall_s", "wall time, around the subprocess (s)", "{:.1f}"),
    ("meta_train_s", "meta-train, validation included (s)", "{:.1f}"),
    ("meta_it_per_s", "meta-iterations/s", "{:.1f}"),
    ("pretrain_s", "pretrain baseline (s)", "{:.1f}"),
    ("adapt_and_measure_s", "fine-tune, generate and measure, all arms (s)", "{:.1f}"),
)


def train(data: dict[str, Any]) -> str:
    """`metaaug train` with the defaults over seeds: its timings, then its arms' quality at the
    run's own fine-tune step, paired against the main arm."""
    quality = data["quality"]
    step = str(quality["goal_step"])
    targets = len(next(iter(quality["splits"].values()))["targets"])
    lines = [
        f"`{data['command']}` ({data['dataset']}, {quality['meta_iterations']} meta-iterations, "
        f"{step} fine-tune steps) after one warm-up run that caches the classifiers; seeds "
        f"{_seeds(data)} (each: split, initialization and noise); threads per seed "
        f"{data['threads_per_seed']}, {data['cpu']}, torch {data['torch']}. Mean over seeds "
        "[95% interval over seeds], and each seed's figure.",
        "",
        "| timing | mean [95% interval] | per seed |",
        "|---|---|---|",
    ]
    for key, label, fmt in TRAIN_TIMING:
        if key in data["timing"]:
            entry = data["timing"][key]
            per_seed = ", ".join(_num(v, fmt) for v in entry["per_seed"])
            lines.append(f"| {label} | {_cell(entry, fmt)} | {per_seed} |")
    lines += [
        "",
        f"Quality after {step} fine-tune steps, {targets} target(s) per seed, "
        f"{quality['shots']} shots, split by {quality['split_by']}. Mean over seeds of each "
        "seed's mean over its targets, [95% interval over seeds].",
        "",
        *_arm_table(quality, step, RECIPE_COLUMNS),
        "",
        *_paired_table(quality),
    ]
    return "\n".join(lines)


# ---------------------------------------------------------------------------- bench-meta


def _load(values: list[float] | None) -> str:
    return "n/a" if values is None else " / ".join(f"{x:.2f}" for x in values)


def _warnings(log: dict[str, dict[str, list[str]]]) -> list[str]:
    """The vmap fallbacks (ops without a batching rule) and other warnings of a table."""
    lines = [f"- vmap fallback (no batching rule) for `{op}`: {', '.join(where)}"
             for op, where in sorted(log["fallbacks"].items())]  # fmt: skip
    if not lines:
        lines.append("- vmap fallbacks (ops without a batching rule): none")
    lines += [f"- warning `{message}`: {', '.join(where)}"
              for message, where in sorted(log["other"].items())]  # fmt: skip
    return lines


SPEED_HEADER = [
    "| algorithm | meta-batch | vectorized tasks/s | sequential tasks/s | speed-up "
    "| meta-steps timed (vec / seq) | s per meta-step (vec / seq) |",
    "|---|---|---|---|---|---|---|",
]


def _speed_row(row: dict[str, Any]) -> str:
    """A meta-step timing row; `vectorized` is null where only the sequential path ran."""
    vec, seq = row["vectorized"], row["sequential"]
    per_step = lambda t: f"{t['seconds'] / t['steps']:.2f}"  # noqa: E731
    if vec is None:
        cells = ["(same path)", f"{seq['tasks_per_s']:.2f}", "—", f"— / {seq['steps']}",
                 per_step(seq)]  # fmt: skip
    else:
        cells = [f"{vec['tasks_per_s']:.2f}", f"{seq['tasks_per_s']:.2f}",
                 f"{row['speedup']:.2f}x", f"{vec['steps']} / {seq['steps']}",
                 f"{per_step(vec)} / {per_step(seq)}"]  # fmt: skip
    return f"| {row['algorithm']} | {row['meta_batch']} | " + " | ".join(cells) + " |"


def _meta_speed(speed: dict[str, Any]) -> list[str]:
    return [
        "**Tasks/s on the digits DCGAN (16 x 16, width 32, WGAN-GP), vectorized vs "
        "sequential.** "
        f"Reptile: {speed['reptile_inner_steps']} inner steps, {speed['support']} support, 0 "
        f"query. MAML (second order): {speed['maml_inner_steps']} inner steps, "
        f"{speed['support']} support, {speed['support']} query. Inner SGD lr 1e-3, outer Adam "
        "lr 1e-4. One warm-up meta-step per setting, then vectorized and sequential take timed "
        f"meta-steps in turn until each has at least {speed['min_seconds']:g} s and "
        f"{speed['min_steps']} meta-step(s). Load average before / after: "
        f"{_load(speed['load_before'])}; {_load(speed['load_after'])}.",
        "",
        *SPEED_HEADER,
        *(_speed_row(row) for row in speed["rows"]),
        "",
        *_warnings(speed["warnings"]),
    ]


def _times(value: float, one: float) -> str:
    return f"{value / one:.2f}"


def _meta_memory(memory: dict[str, Any]) -> list[str]:
    how = (
        "`torch.cuda.max_memory_allocated` during the meta-step minus the memory allocated "
        "before it"
        if memory["device"] == "cuda"
        else "peak RSS (VmHWM) of a fresh process that takes one meta-step (no warm-up) minus "
        "the peak RSS of one that builds the same objects and takes none"
    )
    lines = [
        "**Peak memory of one MAML meta-step, second order vs first order.** Digits DCGAN, "
        f"meta-batch {memory['meta_batch']} (vectorized), {memory['support']} support + "
        f"{memory['support']} query, inner SGD. Figure: {how}. Row 0 is a meta-step with no "
        "inner steps (the meta-losses and their vjp only, the same for both orders): the "
        "fixed part, which the 'above 0 steps' columns subtract.",
    ]
    if memory["baseline_mib"] is not None:
        lines[0] += (f" Baseline process (imports, GAN, tasks, no meta-step): "
                     f"{memory['baseline_mib']:.1f} MiB.")  # fmt: skip
    fixed, rows = memory["fixed_mib"], memory["rows"]
    lines += [
        "",
        "| inner steps | second order MiB | x vs 1 step | first order MiB | x vs 1 step "
        "| second order above 0 steps MiB (x vs 1 step) | first order above 0 steps MiB "
        "(x vs 1 step) | second / first |",
        "|---|---|---|---|---|---|---|---|",
    ]
    if fixed is not None:
        lines.append(f"| 0 | {fixed:.1f} | — | {fixed:.1f} | — | 0 | 0 | 1.00 |")

    def above(value: float, one: float) -> str:
        if fixed is None:
            return "—"
        return f"{value - fixed:.1f} ({(value - fixed) / (one - fixed):.2f}x)"

    so1, fo1 = rows[0]["second_mib"], rows[0]["first_mib"]
    for row in rows:
        so, fo = row["second_mib"], row["first_mib"]
        lines.append(
            f"| {row['inner_steps']} | {so:.1f} | {_times(so, so1)} | {fo:.1f} | "
            f"{_times(fo, fo1)} | {above(so, so1)} | {above(fo, fo1)} | {so / fo:.2f} |"
        )
    return [*lines, "", *_warnings(memory["warnings"])]


def _meta_figr(figr: dict[str, Any]) -> list[str]:
    return [
        f"**Reptile tasks/s on FIGR's architecture ({figr['size']} x {figr['size']}).** "
        f"`FIGRGenerator(100, 1, {figr['size']})` + `FIGRDiscriminator(1, {figr['size']})` "
        f"({figr['params_m']:.1f} M parameters), WGAN-GP, {figr['support']} images per task, "
        f"{figr['inner_steps']} inner steps, inner SGD lr 1e-3, outer Adam lr 1e-4. One shared "
        "warm-up meta-step (1 task, 1 inner step), then one timed meta-step per cell. Load "
        f"average before / after: {_load(figr['load_before'])}; {_load(figr['load_after'])}.",
        "",
        *SPEED_HEADER,
        *(_speed_row(row) for row in figr["rows"]),
        "",
        *_warnings(figr["warnings"]),
    ]


def _speed_verdict(v: dict[str, Any]) -> str:
    if v["speedup"] is None:
        return f"- {v['name']} at meta-batch {v['meta_batch']}: not measured in this mode"
    met = "met" if v["met"] else "NOT MET"
    return (f"- {v['name']} vectorized / sequential tasks/s at meta-batch {v['meta_batch']}: "
            f"{v['speedup']:.2f}x (target >= {v['target']:g}x): {met}")  # fmt: skip


def _memory_verdict(v: dict[str, Any]) -> str:
    lo, hi = v["steps"]
    verdict = "superlinear" if v["superlinear"] else "no worse than linear"
    if v["target"]:
        verdict = f"NOT MET ({verdict})" if v["superlinear"] else f"met ({verdict})"
    part = "above the 0-step meta-step" if v["above_fixed"] else "total"
    per_step = ", ".join(f"{a}->{b}: {d:.1f} MiB/step" for a, b, d in v["per_step_mib"])
    (t_lo, t_hi), (g_lo, g_hi) = v["total_mib"], v["grown_mib"]
    return (
        f"- {v['name']} memory {lo} -> {hi} inner steps: total {t_lo:.1f} -> {t_hi:.1f} MiB "
        f"({t_hi / t_lo:.2f}x); {part} {g_lo:.1f} -> {g_hi:.1f} MiB ({g_hi / g_lo:.2f}x for "
        f"{hi / lo:g}x the steps); added per step {per_step}: {verdict}"
    )


def meta(data: dict[str, Any]) -> str:
    """bench_meta.py: meta-step speed (vmap vs sequential), MAML memory, FIGR's architecture."""
    mode = "--quick (a smoke run, figures not for reporting)" if data["quick"] else "full"
    lines = [
        f"{data['cpu']}, {data['threads']} thread(s) (inter-op {data['interop_threads']}), "
        f"torch {data['torch']}, freed memory reused, "
        f"{'CUDA' if data['cuda'] else 'no CUDA'}; mode {mode}; {data['wall_s']:.0f} s in all.",
        "",
        *_meta_speed(data["speed"]),
        "",
        *_meta_memory(data["memory"]),
        "",
        *_meta_figr(data["figr"]),
        "",
        "Verdicts:",
        "",
        *(_speed_verdict(v) for v in data["verdicts"]["speed"]),
        *(_memory_verdict(v) for v in data["verdicts"]["memory"]),
    ]
    return "\n".join(lines)


# ---------------------------------------------------------------------------- classifiers


def classifiers(data: dict[str, Any]) -> str:
    """bench_classifiers.py: each classifier a first run trains, seconds and accuracy."""
    smoke = f"; overrides {' '.join(data['extra'])} (a smoke run)" if data["extra"] else ""
    lines = [
        f"{data['cpu']}, {data['threads']} thread(s), torch {data['torch']}, seeds "
        f"{', '.join(map(str, data['seeds']))}, each trained from an empty cache{smoke}. Seconds "
        "and accuracy: mean [95% interval over seeds]. Goal: each classifier "
        f"<= {data['goal_s']:g} s.",
        "",
        "| setting | classifier | classes per seed | seconds | accuracy | goal |",
        "|---|---|---|---|---|---|",
    ]
    # the domain classifier's accuracy on held-out meta-train rows; the fidelity classifier's
    # on the unseen rows of every val and test class (the mean ceiling)
    kinds = {"domain": ("domain_accuracy", "held-out meta-train rows"),
             "fidelity": ("fidelity_ceiling", "mean ceiling, val and test classes")}  # fmt: skip
    for name, f in data["settings"].items():
        for kind, (key, what) in kinds.items():
            seconds, goal = f[f"{kind}_s"]["mean"], data["goal_s"]
            met = "met" if seconds <= goal else f"missed by {seconds - goal:.0f} s"
            classes = ", ".join(f"{n:.0f}" for n in f[f"{kind}_classes"]["per_seed"])
            lines.append(
                f"| {name} | {kind} | {classes} | "
                f"{_cell(f[f'{kind}_s'], '{:.0f}')} | {_cell(f[key], '{:.3f}')} ({what}) | {met} |"
            )
    return "\n".join(lines)


# ---------------------------------------------------------------------------- bench-speed


def _variants(data: dict[str, Any]) -> list[str]:
    lines = ["| setup | variant | first episode | episode | meta-it/s | vs 32 | GFLOP/s | "
             "% fp32 peak | % bf16 peak |", "|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for setup in data["setups"]:
        name = f"{setup['name']} ({setup['weights'] / 1e6:.2f}M weights)"
        for row in setup["rows"]:
            lines.append(
                f"| {name} | {row['variant']} | {row['first_s']:.2f} s | "
                f"{row['median_s'] * 1e3:.0f} ms | {row['it_per_s']:.1f} | {row['vs_32']:.2f}x | "
                f"{row['gflops']:.0f} | {row['fp32_peak_pct']:.0f}% | {row['bf16_peak_pct']:.0f}% |"
            )
            name = ""  # the setup names its first row only
        lines.append(
            f"| | FLOPs per episode: {setup['gflop_per_episode']:.1f} GFLOP | | | | | | | |"
        )
    return lines


def _figr_own(rows: list[dict[str, Any]]) -> list[str]:
    lines = ["| loop | episode (median) | min | max | speed-up over FIGR's loop |",
             "|---|---|---|---|---|"]  # fmt: skip
    for row in rows:
        lines.append(f"| {row['loop']} | {row['median_s']:.2f} s | {row['min_s']:.2f} s | "
                     f"{row['max_s']:.2f} s | {row['speedup']:.2f}x |")  # fmt: skip
    return lines


def _profile(precision: str, rows: list[dict[str, Any]]) -> list[str]:
    lines = [f"| op kind ({precision}) | self time | share |", "|---|---|---|"]
    lines += [f"| {r['kind']} | {r['ms']:.0f} ms | {r['share_pct']:.0f}% |" for r in rows]
    return lines


def _layers(rows: list[dict[str, Any]]) -> list[str]:
    lines = ["| layer | input | GFLOP | fp32 fwd | fp32 fwd+bwd | bf16 fwd | bf16 fwd+bwd |",
             "|---|---|---|---|---|---|---|"]  # fmt: skip
    for row in rows:
        cells = [f"{c['gflops']:.0f} ({c['peak_pct']:.0f}%)" for c in row["rates"]]
        lines.append(f"| {row['layer']} | {row['input']} | {row['gflop']:.2f} | "
                     + " | ".join(cells) + " |")  # fmt: skip
    return lines


def speed(data: dict[str, Any]) -> str:
    """bench_speed.py: the CPU's peak, episode time per variant, FIGR's loop, the profile."""
    memory = "freed memory reused" if data["reuse_memory"] else "glibc's malloc defaults"
    rounds = f"median of {data['rounds']} timed episode(s) after one warm-up"
    lines = [
        f"{_where(data)}, {memory}, load average {_load(data['load'])}; {rounds}"
        f"{' (--quick: digits only)' if data['quick'] else ''}.",
        "",
        "| peak | GFLOP/s |",
        "|---|---|",
        *(f"| {key} | {value:.0f} |" for key, value in data["peaks"].items()),
        "",
        *_variants(data),
    ]
    if data["figr_own"] is not None:
        lines += ["", "FIGR's own training loop on the same images, episodes in turn:", "",
                  *_figr_own(data["figr_own"])]  # fmt: skip
    for precision, rows in data["profile"].items():
        lines += ["", *_profile(precision, rows)]
    if data["layers"]:
        lines += ["", "FIGR's convolutions alone, GFLOP/s (share of the conv peak of the "
                  "precision):", "", *_layers(data["layers"])]  # fmt: skip
    return "\n".join(lines)


# ---------------------------------------------------------------------------- bench-precision


def _p(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2g}"


def _metric_format(metric: str, signed: bool = False) -> str:
    fmt = FORMATS.get(metric, "{:.3g}")
    return fmt.replace("{:", "{:+") if signed else fmt


def precision(data: dict[str, Any]) -> str:
    """bench_precision.py: every arm's quality in fp32 and bf16 at the same seeds, paired."""
    lines = [
        f"`metaaug train` in fp32 and in bf16 (`hardware.precision`), the same seeds, "
        f"{_where(data)}{'; --quick budgets (a smoke run)' if data['quick'] else ''}. "
        "Mean over seeds [95% interval over seeds]; bf16 - fp32 is paired per seed (same split, "
        "target and noise); p from the paired t-test and the Wilcoxon signed-rank test.",
    ]
    for name, ds in data["datasets"].items():
        lines += [
            "",
            f"**{name}**, seeds {_seeds(ds)}:",
            "",
            "| arm | metric | fp32 | bf16 | bf16 - fp32 | bf16 higher | p (t) | p (Wilcoxon) |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for arm, metrics in ds["table"].items():
            for metric, c in metrics.items():
                fmt, signed = _metric_format(metric), _metric_format(metric, signed=True)
                lines.append(
                    f"| {arm} | {metric} | {_cell(c['fp32'], fmt)} | {_cell(c['bf16'], fmt)} | "
                    f"{_cell(c['paired'], signed)} | {c['bf16_higher']}/{c['pairs']} | "
                    f"{_p(c['p_t'])} | {_p(c['p_wilcoxon'])} |"
                )
        walls = ds["wall_s"]
        lines.append(f"| wall (s) | | {_cell(walls['32'], '{:.0f}')} | "
                     f"{_cell(walls['bf16'], '{:.0f}')} | | | | |")  # fmt: skip
        holds = [v["metric"] for v in ds["verdicts"] if v["holds_zero"]]
        moved = [v["metric"] for v in ds["verdicts"] if v["holds_zero"] is False]
        verdict = (
            f"{ds['main_arm']}, bf16 - fp32: the paired 95% interval holds 0 for "
            f"{', '.join(holds) or 'none'}; not for {', '.join(moved) or 'none'}."
        )
        lines += ["", verdict]
    return "\n".join(lines)


# ---------------------------------------------------------------------------- bench-quality


def quality(data: dict[str, Any]) -> str:
    """bench_quality.py: every initialization's quality per fine-tune step over seeds, then
    each against the reference (scratch), paired per seed."""
    steps = [str(s) for s in data["steps"]]
    targets = "; ".join(f"seed {s}: {', '.join(t)}" for s, t in data["targets"].items())
    ref = data["reference"]
    lines = [
        f"`metaaug train` once per initialization and seed ({data['dataset']}, "
        f"{data['iterations']} meta-iterations / pretraining updates, baselines off), seeds "
        f"{_seeds(data)} (targets: {targets}); {_where(data)}. Mean over seeds [95% interval "
        f"over seeds]; copy_shots (the shots themselves) is the same at every step.",
    ]
    for metric in data["metrics"]:
        fmt = _metric_format(metric)
        lines += ["", f"| {metric} | " + " | ".join(f"@{s}" for s in steps) + " |",
                  "|---" * (1 + len(steps)) + "|"]  # fmt: skip
        for arm in data["arms"]:
            cells = [_cell(data["table"][arm][s][metric], fmt) for s in steps]
            lines.append(f"| {arm} | " + " | ".join(cells) + " |")
        if data["copy_shots"] is not None:
            cell = _cell(data["copy_shots"][metric], fmt)
            lines.append("| copy_shots | " + " | ".join([cell] * len(steps)) + " |")
    lines += ["", f"Paired differences, each arm minus {ref} at the same seed (same split, "
              "target and shots), [95% interval over seeds]:"]  # fmt: skip
    for metric in data["paired_metrics"]:
        signed = _metric_format(metric, signed=True)
        lines += ["", f"| {metric} - {ref} | " + " | ".join(f"@{s}" for s in steps) + " |",
                  "|---" * (1 + len(steps)) + "|"]  # fmt: skip
        for arm, by_step in data["paired"].items():
            cells = [_cell(by_step[s][metric], signed) for s in steps]
            lines.append(f"| {arm} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def ablation(data: dict[str, Any]) -> str:
    """Issue 22's ablation (`bench_ablation.py`): per shots, each design x trust variant of the
    gan arm, in points against its reference, paired per episode and over seeds."""
    where = "meta-val (to choose)" if data["stage"] == "val" else "meta-test (to report)"
    lines = [
        f"Episodes of {where} classes; seeds {_seeds(data)} (each: split, GANs, backbone and "
        f"episodes); gan.class_loss {data['class_loss']:g} in the `+class` designs, weight "
        f"{data['weight']:g} in the weighted variants; threads per process {data['threads']}, "
        f"worker processes per run {data['workers']}; CPUs: {data['cpu']}. Paired differences "
        "in points, mean over seeds [95% interval over seeds]. Variants of the gan arm's images: "
        "`gan` as made, `gan_f` filtered, `gan_w` weighted, `gan_fw` both.",
    ]
    for shots in next(iter(data["designs"].values())):
        lines += ["", f"**{shots} shot(s)**", "",
                  "| design | variant | plain: vs none | plain: classic+ vs classic "
                  "| protonet: vs none |", "|---|---|---|---|---|"]  # fmt: skip
        for design, table in data["designs"].items():
            plain, proto = table[shots]["plain"], table[shots]["protonet"]
            for v in (v for v in ("gan", "gan_f", "gan_w", "gan_fw") if v in plain):
                cells = [_points(plain[v]["vs_none"]), _points(plain[f"classic+{v}"]["vs_classic"]),
                         _points(proto[v]["vs_none"])]  # fmt: skip
                row = " | ".join(_cell(c, "{:+.1f}") for c in cells)
                lines.append(f"| {design} | {v} | {row} |")
    gain = _cell(_points(data["classic_plus_gain"][data["choice"]]), "{:+.1f}")
    if data["stage"] == "val":
        lines += ["", "Highest plain classic+variant gain over classic, mean over seeds and "
                  f"shots: **{data['choice']}**, {gain} points."]  # fmt: skip
    else:
        lines += ["", f"The choice made on meta-val, **{data['choice']}**: its plain "
                  f"classic+variant gain over classic here, mean over seeds and shots, {gain} "
                  "points. A design runs only the variants a mechanism alone or the choice "
                  "needs."]  # fmt: skip
    if goals := data.get("fewshot_goals"):
        lines += ["", f"Issue 22's few-shot goals, read for **{data['choice']}** on these "
                  "episodes (points, mean over seeds [95% interval over seeds]):", ""]  # fmt: skip
        lines += _checkboxes(goals)
    return "\n".join(lines + _generation(data.get("generation", {})))


def _checkboxes(goals: list[dict[str, Any]]) -> list[str]:
    """`ablation_goals.fewshot_goals` as checkboxes, each with its interval over seeds."""
    cells = [_cell({"mean": g["mean"], "ci95": g["ci95"]}, "{:+.1f}") for g in goals]
    return [f"- [{'x' if g['met'] else ' '}] {g['goal']}: {cell}"
            for g, cell in zip(goals, cells, strict=True)]  # fmt: skip


def diversity_weight(data: dict[str, Any]) -> str:
    """diversity_weight.py: dagan+class+div's train runs on meta-val classes, one per weight of
    the mode-seeking term, and the weight its rule chose (docs/choices.md)."""
    floor = data["reading"]["0"]["novel_fidelity"] - data["tolerance"]
    lines = [
        f"Seed {data['seed']}, {data['classes']} classes, {data['cpu']}, {data['threads']} "
        f"thread(s); the DAGAN-style pair with gan.class_loss {data['class_loss']:g} and "
        "gan.diversity at each weight (0: dagan+class), each figure the mean of its train "
        "run's last two validations. Variety: diversity_fake / diversity_real. The rule: the "
        f"largest weight whose novel_fidelity is >= {floor:.3f} (weight 0's less "
        f"{data['tolerance']:g}).",
        "",
        "| gan.diversity | novel_fidelity | copies | variety | FID | qualifies |",
        "|---|---|---|---|---|---|",
    ]
    for weight, r in data["reading"].items():
        verdict = "(reference)" if weight == "0" else (
            "yes" if r["novel_fidelity"] >= floor else "no")  # fmt: skip
        lines.append(
            f"| {weight} | {r['novel_fidelity']:.3f} | {r['copies']:.3f} | "
            f"{r['diversity_fake'] / r['diversity_real']:.2f} | {r['fid']:.1f} | {verdict} |"
        )
    pick = data["chosen"]
    lines += ["", f"Chosen: **{pick:g}**." if pick is not None
              else "Chosen: none; dagan+class+div leaves the ablation."]  # fmt: skip
    return "\n".join(lines)


def ablation_runs(data: dict[str, Any]) -> str:
    """The ablation's runs kept so far (`ablation_progress.py`), one seed each: in points,
    paired per episode, mean +- the 95% half-width over that seed's episodes."""
    images = _images_kept(data.get("images", []))
    if not data["runs"]:
        return "\n".join(images).strip() or "(no run kept yet)"
    where = "meta-val" if data["stage"] == "val" else "meta-test"
    lines = [
        f"The {data['stage']} stage's runs ({where} episodes), one seed per row: "
        "the interval is over that seed's episodes (one GAN, one backbone), not over seeds, so "
        "a row is one split's reading, not a result. Paired differences in points, mean +- "
        "95% half-width; `kept`: the share of the gan arm's images its filter kept.",
        "",
        "| design | shots | seed | variant | plain: vs none | plain: classic+ vs classic "
        "| protonet: vs none | kept | episodes, minutes, CPU |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for run in data["runs"]:
        taken = run.get("taken_up", 0)  # the minutes are those of the episodes after them
        rest = f" for the last {run['episodes'] - taken}" if taken else ""
        where = f"{run['episodes']}, {run['minutes']:g}{rest}, {run['cpu']}"
        for v, row in run["variants"].items():
            cells = [f"{100 * row[k]['mean']:+.1f} ± {100 * row[k]['half_width']:.1f}"
                     for k in ("plain_vs_none", "plain_classic_plus_vs_classic",
                               "protonet_vs_none")]  # fmt: skip
            share = "" if row["kept"] is None else f"{row['kept']:.2f}"
            lines.append(f"| {run['design']} | {run['shots']} | {run['seed']} | {v} | "
                         f"{' | '.join(cells)} | {share} | {where} |")  # fmt: skip
    return "\n".join(lines + _goals_over_seeds(data.get("over_seeds", [])) + images)


def _goals_over_seeds(rows: list[dict[str, Any]]) -> list[str]:
    """Issue 22's few-shot goals per design, shot count and variant kept on three seeds or
    more, each with its interval over those seeds."""
    if not rows:
        return []
    lines = [
        "",
        "Where a design and shot count is kept on three seeds or more, issue 22's "
        "few-shot goals over those seeds (points, mean [95% interval over seeds]):",
    ]
    for r in rows:
        seeds = ", ".join(map(str, r["seeds"]))
        lines += ["", f"**{r['design']}** / {r['variant']}, {r['shots']} shot(s), seeds {seeds}:"]
        lines += _checkboxes(r["goals"])
    return lines


def _images_kept(rows: list[dict[str, Any]]) -> list[str]:
    """Each kept measure of a design's images: its means over one seed's meta-test targets."""
    if not rows:
        return []
    keys = ("fidelity", "novel_fidelity", "copies", "ceiling")
    lines = ["", "Each design's images of meta-test classes drawn with the seed (`metaaug "
             "train`'s figures, mean over the seed's targets; no choice reads them; a blank: "
             "kept before the baselines were measured there):", "",
             "| design | seed | targets | " + " | ".join(keys) + " | scratch novel_fidelity | "
             "pretrain novel_fidelity | copy_shots fidelity | FID | CPU |",
             "|---" * (8 + len(keys)) + "|"]  # fmt: skip
    for r in rows:
        gan, copy = r["means"]["gan"], r["means"]["copy_shots"]
        cells = [_num(gan[k], "{:.2f}") for k in keys] + [
            _num(r["means"][b]["novel_fidelity"], "{:.2f}") if b in r["means"] else ""
            for b in ("scratch", "pretrain")]  # fmt: skip
        lines.append(f"| {r['design']} | {r['seed']} | {r['targets']} | {' | '.join(cells)} | "
                     f"{_num(copy['fidelity'], '{:.2f}')} | {_num(gan['fid'], '{:.3g}')} | "
                     f"{r['cpu']} |")  # fmt: skip
    return lines


def _generation(designs: dict[str, Any]) -> list[str]:
    """Each design's images of meta-test classes over seeds, its baselines beside, and the
    goals."""
    keys = ("fidelity", "novel_fidelity", "copies", "ceiling", "fid")
    lines = [
        "",
        "What each design draws on meta-test classes (`metaaug train`'s figures, "
        "each seed's targets drawn with it; mean over seeds [95% interval over seeds]):",
        "",
        "| design | arm | " + " | ".join(keys) + " |",
        "|---" * (2 + len(keys)) + "|",
    ]
    for design, g in designs.items():
        for arm in g["arms"]:  # the design's `gan`, then scratch, pretrain and copy_shots
            cells = [_cell(g["arms"][arm][k], _metric_format(k)) for k in keys]
            lines.append(f"| {design} | {arm} | {' | '.join(cells)} |")
    for design, g in designs.items():
        goals = [f"{x['goal']}: {_num(x['value'], '{:.2f}')}" + ("" if x["met"] else " (missed)")
                 for x in g["goals"]]  # fmt: skip
        lines.append(f"\n{design}: " + "; ".join(goals) + ".")
    return lines


def generate_filter(data: dict[str, Any]) -> str:
    """generate_filter.py: the share of a target's images `generate filter=true` keeps, and the
    share the fidelity classifier calls the class among all, the kept and the dropped."""
    lines = [
        f"{data['cpu']}, {data['threads']} thread(s), torch {data['torch']}; "
        f"{data['num_images']} images per target. Shares: mean [95% interval over seeds] of each "
        "seed's mean over its targets; `kept - all` (fidelity of the kept images less that of "
        "all) is paired per target.",
        "",
        "| design | seeds (targets) | kept | fidelity: all | kept | dropped | kept - all |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, d in [*data["designs"].items(), ("all designs", data["pooled"])]:
        seeds = ", ".join(f"{s} ({n})" for s, n in zip(d["seeds"], d["targets"], strict=True))
        cells = [_cell(d[k], "{:.2f}") for k in
                 ("kept", "fidelity_all", "fidelity_kept", "fidelity_dropped")]  # fmt: skip
        lines.append(f"| {name} | {seeds} | {' | '.join(cells)} | "
                     f"{_cell(d['kept_minus_all'], '{:+.2f}')} |")  # fmt: skip
    return "\n".join(lines)


RENDERERS: dict[str, Callable[[dict[str, Any]], str]] = {
    "ablation": ablation,
    "ablation_runs": ablation_runs,
    "diversity_weight": diversity_weight,
    "recipe": recipe,
    "fewshot": fewshot,
    "train": train,
    "meta": meta,
    "classifiers": classifiers,
    "generate_filter": generate_filter,
    "speed": speed,
    "precision": precision,
    "quality": quality,
}


def render(data: dict[str, Any]) -> str:
    kind = data.get("bench")
    if kind not in RENDERERS:
        raise SystemExit(f"no renderer for bench {kind!r}; known: {', '.join(RENDERERS)}")
    return RENDERERS[kind](data)


def fill(doc: str, name: str, table: str) -> str:
    """`doc` with the block of `name` replaced by `table` (the markers stay)."""
    # an empty block (nothing between the markers, as a bench not run yet leaves it) too
    pattern = re.compile(
        rf"(<!-- results:{re.escape(name)} -->\n)(?:.*?\n)?(<!-- /results:{re.escape(name)} -->)",
        re.S,
    )
    if not pattern.search(doc):
        raise SystemExit(f"docs/results.md has no <!-- results:{name} --> block; add one")
    return pattern.sub(lambda m: m.group(1) + table + "\n" + m.group(2), doc)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--doc", default=str(DOC))
    parser.add_argument("--data", default=str(DATA))
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args()
    doc_path = Path(args.doc)
    doc = before = doc_path.read_text()
    for path in sorted(Path(args.data).glob("*.json")):
        doc = fill(doc, path.stem, render(json.loads(path.read_text())))
    if args.check:
        sys.exit(0 if doc == before else "docs/results.md differs from its JSON: make results")
    doc_path.write_text(doc)
    print(f"rendered {doc_path}")


if __name__ == "__main__":
    main()
