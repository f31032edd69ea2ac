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
}


def recipe(data: dict[str, Any]) -> str:
    """The recipe's table at its goal step, the paired differences and the goals."""
    step = str(data["goal_step"])
    cols = ("novel_fidelity", "fidelity", "copies", "ceiling", "memorization", "fid")
    seeds = ", ".join(map(str, data["seeds"]))
    per_seed = len(next(iter(data["splits"].values()))["targets"])
    lines = [
        f"`experiment={data['experiment']}`, split by {data['split_by']}, seeds {seeds} "
        f"(each: split, initialization and noise), {per_seed} "
        f"targets per seed, {data['shots']} shots, {data['meta_iterations']} meta-iterations, "
        f"{step} fine-tune steps; threads per seed {data['threads_per_seed']}, {data['cpu']}. "
        "Mean over seeds of each seed's mean over its targets, [95% interval over seeds].",
        "",
        "| arm | " + " | ".join(cols) + " |",
        "|---" * (len(cols) + 1) + "|",
    ]
    for arm in data["arms"]:
        row = data["table"][arm][step]
        lines.append(f"| {arm} | " + " | ".join(_cell(row[k], FORMATS[k]) for k in cols) + " |")
    main = data["main_arm"]
    lines += ["", f"Paired differences, {main} minus each arm (same targets, shots and noise; "
              "per-seed mean of the per-target differences, [95% interval over seeds]):", "",
              "| arm | novel_fidelity | fidelity | fid |", "|---|---|---|---|"]  # fmt: skip
    for other, diff in data["paired"].items():
        lines.append(f"| {other} | " + " | ".join(
            _cell(diff[k], "{:+.2f}" if k != "fid" else "{:+.3g}")
            for k in ("novel_fidelity", "fidelity", "fid")) + " |")  # fmt: skip
    lines += ["", "Goals:", ""]
    for goal in data["goals"]:
        value = "n/a" if goal["value"] is None else f"{goal['value']:.3f}"
        lines.append(f"- [{'x' if goal['met'] else ' '}] {goal['goal']}: {value}")
    return "\n".join(lines)


def _points(entry: dict[str, Any]) -> dict[str, Any]:
    """An accuracy entry (mean, ci95) in points instead of fractions."""
    scale = lambda v: None if v is None else 100 * v  # noqa: E731
    return {**entry, "mean": scale(entry["mean"]), "ci95": [scale(v) for v in entry["ci95"]]}


def fewshot(data: dict[str, Any]) -> str:
    """Accuracy per shots, learner and arm over seeds, and each arm against none (paired)."""
    seeds = ", ".join(map(str, data["seeds"]))
    lines = [
        f"Seeds {seeds} (each: split, GAN, backbone and episodes); threads {data['threads']}, "
        f"{data['cpu']}. Accuracy in points: mean over seeds [95% interval over seeds], the "
        "largest per-seed episode interval (±), and the paired difference against none "
        "[95% interval over seeds].",
    ]
    for shots, table in data["shots"].items():
        header = "| learner | arm | accuracy | episode ± | vs none |"
        lines += ["", f"**{shots} shot(s)**", "", header, "|---|---|---|---|---|"]
        for learner, arms in table.items():
            for arm, cell in arms.items():
                scaled, diff = _points(cell), _points(cell["vs_none"])
                episode = max(cell["episode_ci_half_width"])
                versus = "" if arm == "none" else _cell(diff, "{:+.1f}")
                lines.append(f"| {learner} | {arm} | {_cell(scaled, '{:.1f}')} | "
                             f"{100 * episode:.1f} | {versus} |")  # fmt: skip
    return "\n".join(lines)


RENDERERS: dict[str, Callable[[dict[str, Any]], str]] = {"recipe": recipe, "fewshot": fewshot}


def render(data: dict[str, Any]) -> str:
    kind = data.get("bench")
    if kind not in RENDERERS:
        raise SystemExit(f"no renderer for bench {kind!r}; known: {', '.join(RENDERERS)}")
    return RENDERERS[kind](data)


def fill(doc: str, name: str, table: str) -> str:
    """`doc` with the block of `name` replaced by `table` (the markers stay)."""
    pattern = re.compile(
        rf"(<!-- results:{re.escape(name)} -->\n).*?(\n<!-- /results:{re.escape(name)} -->)",
        re.S,
    )
    if not pattern.search(doc):
        raise SystemExit(f"docs/results.md has no <!-- results:{name} --> block; add one")
    return pattern.sub(lambda m: m.group(1) + table + m.group(2), doc)


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
