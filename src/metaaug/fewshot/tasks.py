"""A user's own classification problems (`metaaug fewshot task=DIR`): fixed support and query
images instead of episodes drawn from meta-test classes.

A task folder holds `support/<class>/` and `query/<class>/` (the same classes, the same number
of support images in each class); `DIR` is one task folder or a folder of them. Each task is
scored like an episode `fewshot.episodes` times: its images stay fixed, and repeat i draws the
arms' and learners' randomness from the seeds of episode i, so a task's interval is the spread
over that randomness (the data are what they are). Tasks are then pooled with each task as one
unit: the mean over tasks, and each arm's paired difference to `none` over tasks.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from metaaug.errors import UserError
from metaaug.fewshot.episodes import Episode
from metaaug.fewshot.report import markdown, per_episode, summarize
from metaaug.fewshot.stats import mean_ci, paired_comparison

# (folder, key) -> class name -> images [N, C, S, S] in [-1, 1]
Reader = Callable[[Path, str], dict[str, torch.Tensor]]


@dataclass(frozen=True)
class FixedTask:
    """One task as an episode source: `episode(i)` is the same episode for every i."""

    name: str
    fixed: Episode

    def episode(self, i: int) -> Episode:
        return self.fixed


def task_folders(root: Path, key: str = "task") -> list[Path]:
    """The task folders of `root`: itself when it holds support/ and query/, else its
    subfolders that do (sorted). One line when there are none."""
    root = root.expanduser()
    if not root.is_dir():
        raise UserError(
            f"{key}='{root}' is not a folder; point {key} at a folder holding "
            "support/<class>/ and query/<class>/ (or a folder of such folders)"
        )
    if _is_task(root):
        return [root]
    found = [p for p in sorted(root.iterdir()) if p.is_dir() and _is_task(p)]
    if not found:
        raise UserError(
            f"{key}='{root}' holds no support/ and query/ folders, itself or in a subfolder; "
            "lay a task out as <task>/support/<class>/*.png and <task>/query/<class>/*.png"
        )
    return found


def _is_task(folder: Path) -> bool:
    return (folder / "support").is_dir() and (folder / "query").is_dir()


def read_task(folder: Path, read: Reader, key: str = "task") -> FixedTask:
    """The task in `folder`, its classes in sorted order (slot i = the i-th class)."""
    support = read(folder / "support", key)
    query = read(folder / "query", key)
    if sorted(support) != sorted(query):
        raise UserError(
            f"{key}: '{folder}' has support classes {sorted(support)} but query classes "
            f"{sorted(query)}; give both folders the same class folders"
        )
    names = sorted(support)
    if len(names) < 2:
        raise UserError(
            f"{key}: '{folder}' has {len(names)} class; a classification task needs at least 2 "
            "class folders under support/ and query/"
        )
    counts = {name: len(support[name]) for name in names}
    if len(set(counts.values())) > 1:
        shown = ", ".join(f"{n}: {c}" for n, c in counts.items())
        raise UserError(
            f"{key}: '{folder}' has unequal support sets ({shown}); give every class the same "
            "number of support images (the arms generate per class from equal shots)"
        )

    def stacked(images: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        x = torch.cat([images[n] for n in names])
        y = torch.cat([torch.full((len(images[n]),), i) for i, n in enumerate(names)])
        return x, y

    (xs, ys), (xq, yq) = stacked(support), stacked(query)
    return FixedTask(folder.name, Episode(xs, ys, xq, yq, tuple(names)))


def pooled(per_task: dict[str, dict[str, dict[str, np.ndarray]]], confidence: float) -> list[dict]:
    """Rows over tasks, each task one unit: per learner x arm, the mean of the tasks' mean
    accuracies +- the interval over tasks, and the paired difference to `none` over tasks
    (intervals need 2 tasks; None with one)."""
    first = next(iter(per_task.values()))
    rows = []
    for learner, arms in first.items():
        for arm in arms:
            means = np.array([t[learner][arm].mean() for t in per_task.values()])
            ci = mean_ci(means, confidence)
            row = {
                "learner": learner,
                "arm": arm,
                "tasks": ci.n,
                "accuracy": ci.mean,
                "ci": ci.half_width if ci.n > 1 else None,
                "diff": None,
                "diff_ci": None,
            }
            if arm != "none" and "none" in arms:
                none = np.array([t[learner]["none"].mean() for t in per_task.values()])
                diff = paired_comparison(means, none, confidence).diff
                row.update(diff=diff.mean, diff_ci=diff.half_width if diff.n > 1 else None)
            rows.append(row)
    return rows


def pooled_markdown(rows: list[dict], confidence: float) -> str:
    pct = round(100 * confidence)
    lines = [
        f"## Pooled over {rows[0]['tasks']} task(s)",
        "",
        f"Each task counts once: the mean of the tasks' accuracies +- its {pct}% interval over "
        "tasks, and the paired difference to `none` over tasks (no interval with one task).",
        "",
        "| learner | arm | accuracy | vs none |",
        "|---|---|---|---|",
    ]
    for r in rows:
        acc = f"{100 * r['accuracy']:.2f}"
        acc += f" ± {100 * r['ci']:.2f}" if r["ci"] is not None else ""
        diff = ""
        if r["diff"] is not None:
            diff = f"{100 * r['diff']:+.2f}"
            diff += f" ± {100 * r['diff_ci']:.2f}" if r["diff_ci"] is not None else ""
        lines.append(f"| {r['learner']} | {r['arm']} | {acc} | {diff} |")
    return "\n".join(lines) + "\n"


Scores = tuple[dict[str, dict[str, np.ndarray]], dict[str, np.ndarray]]


def task_report(
    results: dict[str, Scores], confidence: float, seed: int, tasks: dict[str, FixedTask]
) -> tuple[list[dict], str, dict]:
    """The pooled rows, fewshot.md (each task's table, then the pooled one) and fewshot.json's
    body for the scores of each task (accuracy and kept shares, per repeat)."""
    sections, body = [], {}
    for name, (acc, kept) in results.items():
        task = tasks[name].fixed
        rows = summarize(acc, confidence, kept)
        counts = torch.bincount(task.query_labels, minlength=task.ways).tolist()
        lo, hi = min(counts), max(counts)
        queries = str(lo) if lo == hi else f"{lo}-{hi}"
        shots = len(task.support) // task.ways
        # its "episodes" are repeats of the one task, each with its own arm and learner seeds
        title = f"task {name}: {task.ways}-way {shots}-shot, repeated"
        sections.append(markdown(rows, title, queries, seed, confidence, kept))
        body[name] = {"rows": rows, "classes": list(task.class_names), **per_episode(acc, kept)}
    rows = pooled({name: acc for name, (acc, _) in results.items()}, confidence)
    text = "\n".join([*sections, pooled_markdown(rows, confidence)])
    return rows, text, {"rows": rows, "tasks": body}
