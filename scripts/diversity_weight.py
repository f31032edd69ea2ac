"""The weight of dagan+class+div's mode-seeking term (`gan.diversity`), chosen on meta-val
classes before the ablation's val runs of that design (docs/choices.md, the mode-seeking term).

Each weight's GAN is meta-trained as `bench_ablation.py` trains dagan+class+div (seed 0,
Omniglot split by alphabet), beside dagan+class (weight 0); each run's validation on its
meta-val classes is read as the mean of its checks at the last two validations. The rule,
fixed before the runs: the largest weight whose novel_fidelity is at least dagan+class's less
`--tolerance`; none qualifying, the design leaves the ablation. Variety is reported beside it
(diversity_fake / diversity_real: the mean feature distance among the generated images over
that among the held-out real ones).

A train run found under --root is read, not trained again; the JSON goes to
docs/results/diversity_weight.json.

    python scripts/diversity_weight.py --weights 0.03,0.1,0.3 --root outputs/diversity
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from bench_ablation import DATA, OMNIGLOT, REPO
from bench_runs import metaaug as run
from bench_runs import take_up
from machine import cpu_name

READ = ("novel_fidelity", "fidelity", "copies", "diversity_fake", "diversity_real", "fid")


def validation(metrics: dict, last: int = 2) -> dict[str, float]:
    """The mean of the last `last` validation checks (on the meta-val classes)."""
    history = sorted(metrics["validation"]["history"].items(), key=lambda kv: int(kv[0]))
    checks = [figures for _, figures in history[-last:]]
    return {k: float(np.mean([c[k] for c in checks])) for k in READ}


def chosen(reading: dict[float, dict[str, float]], tolerance: float) -> float | None:
    """The largest weight > 0 whose novel_fidelity is within `tolerance` of weight 0's."""
    floor = reading[0.0]["novel_fidelity"] - tolerance
    ok = [w for w, r in reading.items() if w > 0 and r["novel_fidelity"] >= floor]
    return max(ok) if ok else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--weights", default="0.03,0.1,0.3")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tolerance", type=float, default=0.05)
    parser.add_argument("--class-loss", type=float, default=1.0)
    parser.add_argument("--root", type=Path, default=REPO / "outputs" / "diversity")
    parser.add_argument("--reference", type=Path, help="dagan+class's train run of the "
                        "seed (weight 0), e.g. the ablation's; default: trained under "
                        "--root")  # fmt: skip
    parser.add_argument("--json", type=Path, default=REPO / "docs" / "results" /
                        "diversity_weight.json")  # fmt: skip
    args = parser.parse_args()
    if not (OMNIGLOT / "images_background_small1.zip").exists():
        sys.exit(f"the shared Omniglot subset is not at {OMNIGLOT}")
    reading = {}
    for weight in [0.0, *(float(w) for w in args.weights.split(","))]:
        out = args.root / f"seed{args.seed}_diversity{weight:g}"
        if weight == 0 and args.reference:
            out = args.reference
        if not (out / "metrics.json").is_file():
            run("train", "experiment=omniglot_cpu", *DATA, f"gan.class_loss={args.class_loss}",
                f"gan.diversity={weight}", "target.classes=1", "compare_baselines=false",
                f"seed={args.seed}", "hardware.threads=1", *take_up(out),
                f"hydra.run.dir={out}")  # fmt: skip
        reading[weight] = validation(json.loads((out / "metrics.json").read_text()))
        r = reading[weight]
        print(f"weight {weight:g}: novel_fidelity {r['novel_fidelity']:.3f}, variety "
              f"{r['diversity_fake'] / r['diversity_real']:.2f}", flush=True)  # fmt: skip
    pick = chosen(reading, args.tolerance)
    report = {"bench": "diversity_weight", "seed": args.seed, "tolerance": args.tolerance,
              "class_loss": args.class_loss, "cpu": cpu_name(), "threads": 1,
              "classes": "meta-val", "reading": {f"{w:g}": r for w, r in reading.items()},
              "chosen": pick}  # fmt: skip
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=1) + "\n")
    print(f"chosen: {pick if pick is not None else 'none (the design leaves the ablation)'}; "
          f"wrote {args.json}")  # fmt: skip


if __name__ == "__main__":
    main()
