"""The few-shot report: accuracy +- CI per learner x arm and the paired difference to `none`,
as rows, markdown and CSV."""

from __future__ import annotations

import csv
import io

import numpy as np

from metaaug.fewshot.stats import mean_ci, paired_comparison

REFERENCE = "none"


def summarize(acc: dict[str, dict[str, np.ndarray]], confidence: float) -> list[dict]:
    """One row per learner x arm: accuracy +- CI, and the paired difference to `none`."""
    rows = []
    for learner, per_arm in acc.items():
        for arm, values in per_arm.items():
            ci = mean_ci(values, confidence)
            row = {"learner": learner, "arm": arm, "episodes": ci.n, "accuracy": ci.mean,
                   "ci": ci.half_width, "diff": None, "diff_ci": None, "p_value": None}  # fmt: skip
            if arm != REFERENCE and REFERENCE in per_arm:
                paired = paired_comparison(values, per_arm[REFERENCE], confidence)
                row.update(diff=paired.diff.mean, diff_ci=paired.diff.half_width,
                           p_value=paired.p_value)  # fmt: skip
            rows.append(row)
    return rows


def markdown(rows: list[dict], title: str, queries: int, seed: int, confidence: float) -> str:
    """The table of `rows` under `title` (ways, shots and dataset)."""
    pct = round(100 * confidence)
    lines = [
        f"# {title} ({rows[0]['episodes']} episodes, {queries} queries per class, seed {seed})",
        "",
        f"Accuracy in % +- its {pct}% confidence interval; the difference to `{REFERENCE}` is "
        "paired (the same episodes), with its interval and the two-sided p-value.",
        "",
        f"| learner | arm | accuracy | vs {REFERENCE} | p |",
        "|---|---|---|---|---|",
    ]
    for r in rows:
        diff = "" if r["diff"] is None else f"{100 * r['diff']:+.2f} ± {100 * r['diff_ci']:.2f}"
        p = "" if r["p_value"] is None else f"{r['p_value']:.2g}"
        lines.append(
            f"| {r['learner']} | {r['arm']} | {100 * r['accuracy']:.2f} ± {100 * r['ci']:.2f} "
            f"| {diff} | {p} |"
        )
    return "\n".join(lines) + "\n"


def to_csv(rows: list[dict]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows({k: "" if v is None else v for k, v in r.items()} for r in rows)
    return out.getvalue()
