"""Does `metaaug generate filter=true` keep the images of the class? (issue 22, part 3)

The judge (`fewshot.trust.ClassJudge`) keeps an image when the run's protonet backbone puts it
nearer its own shots' prototype than any meta-train class's. A second network answers
whether that is the class: the run's fidelity classifier, which learned every class from
real images (the target's reference rows among them) and never the shots. For every
`checkpoints/finetuned/<class>.pt` of the train runs given, this draws the run's own images
(its seed, `--num-images` of them), asks the judge, and reads the fidelity classifier's
share on all of them, on those kept and on those dropped. A seed's mean over its targets is
one observation; the interval is over seeds, per design and for the designs pooled, and
"kept - all" is paired per target. Writes JSON (`--json`, rendered by `make results`).

    python scripts/generate_filter.py RUN [RUN ...]       # train runs with target.classes=N
"""

from __future__ import annotations

import argparse
import json
import math
from collections import defaultdict
from pathlib import Path
from typing import Any

import torch
from machine import cpu_name
from recipe_summary import finite_mean, interval

from metaaug.config.saved import Saved, class_judge, load_saved, sample_saved
from metaaug.metrics.domain import DomainFeatures
from metaaug.metrics.fidelity import ClassFidelity
from metaaug.models.classifier import DomainClassifier

NAN = math.nan
FIGURES = ("kept", "fidelity_all", "fidelity_kept", "fidelity_dropped", "kept_minus_all")


def design(saved: Saved) -> str:
    """The ablation's name of a run's GAN: its kind, `+class` and `+div` for its terms."""
    gan = saved.config.gan
    terms = ("+class" if gan.get("class_loss", 0) else "") + (
        "+div" if gan.get("diversity", 0) else ""
    )
    return f"{gan.name}{terms}"


def fidelity_of(run: Path) -> ClassFidelity:
    """The run's fidelity classifier, from the cache its metrics.json names."""
    path = json.loads((run / "metrics.json").read_text())["fidelity"]["classifier_path"]
    state = torch.load(path, map_location="cpu", weights_only=True)
    model = DomainClassifier(**state["config"])
    model.load_state_dict(state["state_dict"])
    return ClassFidelity(DomainFeatures(model.eval()), tuple(state["class_names"]))


def share(hits: torch.Tensor) -> float:
    return float(hits.float().mean()) if len(hits) else NAN


def judged(run: Path, num_images: int) -> list[dict[str, Any]]:
    """One row per finetuned checkpoint of `run`: the share kept and the fidelity of each part."""
    fidelity, rows = fidelity_of(run), []
    for path in sorted((run / "checkpoints" / "finetuned").glob("*.pt")):
        saved = load_saved(path)
        images = sample_saved(saved, num_images, seed=int(saved.config.seed))
        keep = class_judge(saved, torch.device("cpu")).keeps(
            images, {saved.class_name: saved.shots}, saved.class_name
        )
        hits = fidelity.hits(images, saved.class_name)
        if hits is None:  # a target without held-out images: no classifier knows it
            continue
        rows.append({"seed": int(saved.config.seed), "design": design(saved),
                     "target": saved.class_name, "kept": share(keep),
                     "fidelity_all": share(hits), "fidelity_kept": share(hits[keep]),
                     "fidelity_dropped": share(hits[~keep])})  # fmt: skip
    return rows


def summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Each figure's mean over a seed's targets, then the mean and 95% interval over seeds."""
    by_seed: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        by_seed[r["seed"]].append({**r, "kept_minus_all": r["fidelity_kept"] - r["fidelity_all"]})
    seeds = sorted(by_seed)
    return {
        "seeds": seeds,
        "targets": [len(by_seed[s]) for s in seeds],
        **{k: interval([finite_mean([r[k] for r in by_seed[s]]) for s in seeds]) for k in FIGURES},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path, help="train run folders")
    parser.add_argument("--num-images", type=int, default=300)
    parser.add_argument("--json", type=Path, default=Path("docs/results/generate_filter.json"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    rows = [row for run in args.runs for row in judged(run, args.num_images)]
    for r in rows:
        print(json.dumps({k: round(v, 3) if isinstance(v, float) else v for k, v in r.items()}))
    designs = sorted({r["design"] for r in rows})
    report = {
        "bench": "generate_filter", "cpu": cpu_name(), "threads": 1, "torch": torch.__version__,
        "num_images": args.num_images, "runs": [str(run) for run in args.runs],
        "designs": {d: summary([r for r in rows if r["design"] == d]) for d in designs},
        "pooled": summary(rows),
        "rows": [{k: None if isinstance(v, float) and math.isnan(v) else v for k, v in r.items()}
                 for r in rows],
    }  # fmt: skip
    args.json.write_text(json.dumps(report, indent=1) + "\n")
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
