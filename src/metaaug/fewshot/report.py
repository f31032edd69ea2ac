"""The few-shot report: accuracy +- CI per learner x arm and the paired difference to `none`,
as rows, markdown and CSV, and the files a run writes of them."""

from __future__ import annotations

import csv
import io
import logging
from pathlib import Path
from typing import Any

import numpy as np
from torch.utils.tensorboard import SummaryWriter

from metaaug.fewshot.stats import mean_ci, paired_comparison
from metaaug.io.atomic import write_json
from metaaug.io.tensorboard import log_hparams

log = logging.getLogger("metaaug.fewshot")

REFERENCE = "none"


def summarize(
    acc: dict[str, dict[str, np.ndarray]],
    confidence: float,
    kept: dict[str, np.ndarray] | None = None,
) -> list[dict]:
    """One row per learner x arm: accuracy +- CI, the paired difference to `none`, and for a
    filtering arm the mean share of its generated images kept (`kept`: per arm, per episode)."""
    kept = kept or {}
    rows = []
    for learner, per_arm in acc.items():
        for arm, values in per_arm.items():
            ci = mean_ci(values, confidence)
            share = float(np.nanmean(kept[arm])) if arm in kept else None
            row = {"learner": learner, "arm": arm, "episodes": ci.n, "accuracy": ci.mean,
                   "ci": ci.half_width, "diff": None, "diff_ci": None, "p_value": None,
                   "kept": share}  # fmt: skip
            if arm != REFERENCE and REFERENCE in per_arm:
                paired = paired_comparison(values, per_arm[REFERENCE], confidence)
                row.update(diff=paired.diff.mean, diff_ci=paired.diff.half_width,
                           p_value=paired.p_value)  # fmt: skip
            rows.append(row)
    return rows


def markdown(
    rows: list[dict],
    title: str,
    queries: int | str,
    seed: int,
    confidence: float,
    kept: dict[str, np.ndarray] | None = None,
) -> str:
    """The table of `rows` under `title` (ways, shots and dataset), and the share each
    filtering arm kept."""
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
    for arm, shares in (kept or {}).items():
        lines.append(
            f"\nThe filter of `{arm}` kept {100 * float(np.nanmean(shares)):.1f}% of its "
            "generated images (mean over episodes)."
        )
    return "\n".join(lines) + "\n"


def to_csv(rows: list[dict]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows({k: "" if v is None else v for k, v in r.items()} for r in rows)
    return out.getvalue()


def per_episode(acc: dict[str, dict[str, np.ndarray]], kept: dict[str, np.ndarray]) -> dict:
    """The per-episode figures of a report: every learner x arm's accuracy, and per filtering
    arm the share of its generated images the judge kept."""
    return {
        "per_episode": {ln: {an: v.tolist() for an, v in pa.items()} for ln, pa in acc.items()},
        "kept": {an: v.tolist() for an, v in kept.items()},
    }


def write(
    run_dir: Path, rows: list[dict], text: str, report: dict[str, Any], hparams: dict[str, Any]
) -> None:
    """`fewshot.md` (`text`), `fewshot.csv` and `fewshot.json` (`report`) under `run_dir`, and
    each row's accuracy and difference to `none` in TensorBoard beside the config (`hparams`)."""
    writer = SummaryWriter(str(run_dir / "tensorboard"))
    for r in rows:
        writer.add_scalar(f"fewshot/{r['learner']}/{r['arm']}/accuracy", r["accuracy"], 0)
        if r["diff"] is not None:
            writer.add_scalar(f"fewshot/{r['learner']}/{r['arm']}/diff_vs_none", r["diff"], 0)
    log_hparams(writer, hparams, {"accuracy": report["objective"]["accuracy"]})
    writer.close()
    (run_dir / "fewshot.md").write_text(text)
    (run_dir / "fewshot.csv").write_text(to_csv(rows))
    write_json(run_dir / "fewshot.json", report)  # strict: an unmeasurable figure is null
    for r in rows:
        log.info("%s / %s: %.2f%%", r["learner"], r["arm"], 100 * r["accuracy"])
    log.info("wrote %s (%.0f s)", run_dir / "fewshot.md", report["seconds"])
