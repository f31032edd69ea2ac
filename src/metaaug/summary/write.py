"""A summarized sweep written out: summary.csv (one row per trial), summary.md (the table, the
parameter importance, and per setting over seeds when the sweep ran several) and summary.png
(the objective per trial, and against the parameter that mattered most)."""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path
from typing import Any

from metaaug.io.atomic import write_bytes, write_text
from metaaug.summary import seeds
from metaaug.summary.sweep import Sweep


def _columns(sweep: Sweep) -> tuple[list[str], list[str]]:
    params = list(dict.fromkeys(k for t in sweep.trials for k in t.params))
    metrics = list(dict.fromkeys(k for t in sweep.trials for k in t.metrics))
    return params, metrics


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return "" if math.isnan(value) else f"{value:.4g}"
    return str(value)


def write_csv(sweep: Sweep, path: Path) -> Path:
    params, metrics = _columns(sweep)
    text = io.StringIO(newline="")
    out = csv.writer(text)
    out.writerow(["job", "status", "objective", *params, *metrics, "wall_s", "error"])
    for t in sweep.trials:
        out.writerow([t.job, t.status, _cell(t.value),
                      *(_cell(t.params.get(p, "")) for p in params),
                      *(_cell(t.metrics.get(m, math.nan)) for m in metrics),
                      _cell(t.wall_s), t.error])  # fmt: skip
    return write_text(path, text.getvalue())


def write_markdown(sweep: Sweep, path: Path) -> Path:
    params, metrics = _columns(sweep)
    best = sweep.best()
    done = sum(t.status == "completed" for t in sweep.trials)
    lines = [
        f"# Sweep `{sweep.root}`",
        "",
        f"{len(sweep.trials)} trials ({done} completed, {len(sweep.trials) - done} not); "
        f"objective `{sweep.objective}` ({sweep.direction}d)"
        + (f"; best: job {best.job}, {sweep.objective} = {best.value:.4g}" if best else "")
        + f". Figures measured on {sweep.measured_on}.",
    ]
    if "meta-test" in sweep.measured_on:
        lines += [
            "",
            "Warning: these trials were judged on the meta-test targets "
            "(objective_on=targets); a setting chosen here is not a result on them.",
        ]
    if sweep.importance:
        ranked = ", ".join(f"`{k}` {v:.2f}" for k, v in sweep.importance.items())
        lines += ["", f"Parameter importance (Optuna's `get_param_importances`): {ranked}."]
    header = ["job", "status", "objective", *params, *metrics, "wall s", "error"]
    lines += ["", "| " + " | ".join(header) + " |", "|---" * len(header) + "|"]
    for t in sweep.trials:
        mark = " **best**" if best is not None and t is best else ""
        cells = [f"{t.job}{mark}", t.status, _cell(t.value),
                 *(_cell(t.params.get(p, "")) for p in params),
                 *(_cell(t.metrics.get(m, math.nan)) for m in metrics),
                 _cell(t.wall_s), t.error.replace("|", "/")]  # fmt: skip
        lines.append("| " + " | ".join(cells) + " |")
    lines += seeds.markdown(sweep)
    return write_text(path, "\n".join(lines) + "\n")


def plot(sweep: Sweep, path: Path) -> Path:
    """The objective per trial with the best so far, and against the parameter that mattered
    most (Optuna's importance; the first swept parameter without a study)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    ok = [t for t in sweep.trials if t.status == "completed" and math.isfinite(t.value)]
    bad = [t for t in sweep.trials if t not in ok]
    left.scatter([t.job for t in ok], [t.value for t in ok], label="trial")
    best_so_far, best = [], None
    pick = max if sweep.direction == "maximize" else min
    for t in sorted(ok, key=lambda t: t.job):
        best = t.value if best is None else pick(best, t.value)
        best_so_far.append((t.job, best))
    if best_so_far:
        left.step(*zip(*best_so_far, strict=True), where="post", color="C1", label="best so far")
    if bad:
        floor = min((t.value for t in ok), default=0.0)
        left.scatter([t.job for t in bad], [floor] * len(bad), marker="x", color="C3",
                     label="failed")  # fmt: skip
    left.set(xlabel="trial (job)", ylabel=sweep.objective, title=f"{sweep.objective} per trial")
    left.legend()
    key = next(iter(sweep.importance or _columns(sweep)[0]), None)  # by importance, else first
    if key is not None and ok:
        xs = [t.params.get(key) for t in ok]
        if all(isinstance(x, int | float) for x in xs):
            right.scatter(xs, [t.value for t in ok])
            if min(xs) > 0 and max(xs) / min(xs) > 20:
                right.set_xscale("log")
        else:
            labels = sorted({str(x) for x in xs})
            right.scatter([labels.index(str(x)) for x in xs], [t.value for t in ok])
            right.set_xticks(range(len(labels)), labels)
        share = sweep.importance.get(key)
        note = f" (importance {share:.2f})" if share is not None else ""
        right.set(
            xlabel=key, ylabel=sweep.objective, title=f"the parameter that mattered most{note}"
        )
    else:
        right.set_axis_off()
    fig.tight_layout()
    png = io.BytesIO()
    fig.savefig(png, format="png", dpi=100)
    plt.close(fig)
    return write_bytes(path, png.getvalue())
