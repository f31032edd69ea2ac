"""Does z move an image-conditioned GAN's images? Two readings of a run's images.

`metaaug train` reports this as `shot_spread` (metaaug.metrics.shot_spread, on the images
themselves, denoised); this script reads it from the sample grids of runs made before
it did, on the grids' raw pixels, with the same `spread`.

- spread: for each target of a `metaaug train` run, from its sample grids
  (`samples/<class>/<arm>.png`, the arm's first 64 images, 8 to a row, 2 pixels apart), the
  mean pixel distance (L2) between two images drawn from one shot over that between images
  of two different shots. Image i was drawn from shot i mod k (k: the target's shots in
  metrics.json). About 1 for a generator whose z varies an image as much as the shot
  does; near 0 for one that draws a single image per shot whatever z. Only for
  image-conditioned pairs (gan=dagan): a set-fusion image reads every shot, and the ratio is 1
  by construction.
- fifths (`--kept`, the ablation's kept `<design>_targets.json`): on how many targets the share
  of a class's images the fidelity classifier calls the class is exactly 1/k, 2/k, ... (k-1)/k:
  one verdict per shot.

    python scripts/shot_spread.py outputs/ablation/seed3/dagan+class_targets
    python scripts/shot_spread.py --kept docs/results/ablation_runs
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from metaaug.io.synthetic import folder_name
from metaaug.metrics.shot_spread import spread

ROW, PAD = 8, 2  # the sample grids' layout (metaaug.io.synthetic.grid)


def grid_images(path: Path) -> torch.Tensor:
    """The images of a sample grid, in drawing order, as rows of pixels in [0, 1]."""
    g = np.asarray(Image.open(path).convert("L"), dtype=np.float64) / 255
    size = (g.shape[1] - PAD) // ROW - PAD
    rows = (g.shape[0] - PAD) // (size + PAD)
    return torch.from_numpy(np.stack([
        g[PAD + r * (size + PAD):][:size, PAD + c * (size + PAD):][:, :size].ravel()
        for r in range(rows) for c in range(ROW)
    ]))  # fmt: skip


def per_shot_verdicts(shares: list[float], shots: int) -> int:
    """How many of `shares` are an inner multiple of 1/shots (within the 1/300 of one image)."""
    return sum(0 < round(s * shots) < shots and abs(s * shots - round(s * shots)) < 1e-3
               for s in shares)  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="*", type=Path, help="metaaug train run folders")
    parser.add_argument("--kept", type=Path, help="the ablation's store of kept runs")
    parser.add_argument("--shots", type=int, default=5, help="shots per target (--kept)")
    args = parser.parse_args()
    for run in args.runs:
        shots = {t["class_name"]: t["shots"]
                 for t in json.loads((run / "metrics.json").read_text())["targets"]}  # fmt: skip
        folders = {name: run / "samples" / folder_name(name) for name in shots}
        arms = sorted(p.stem for p in next(iter(folders.values())).glob("*.png")
                      if p.stem != "target_shots")  # fmt: skip
        figures = {}
        for arm in arms:
            values = [spread(grid_images(folders[name] / f"{arm}.png"), shots[name])
                      for name in shots]  # fmt: skip
            figures[arm] = f"{np.mean(values):.2f} ({min(values):.2f} to {max(values):.2f})"
        print(f"{run}: within-shot / between-shot distance over {len(shots)} targets: {figures}")
    if args.kept:
        for path in sorted(args.kept.glob("seed*/*_targets.json")):
            arms = json.loads(path.read_text())["arms"]
            counts = {arm: f"{per_shot_verdicts(a['fidelity'], args.shots)}/{len(a['fidelity'])}"
                      for arm, a in arms.items() if arm != "copy_shots"}  # fmt: skip
            print(f"{path.parent.name} {path.stem.removesuffix('_targets')}: targets whose "
                  f"fidelity is k/{args.shots}, 0<k<{args.shots}: {counts}")  # fmt: skip


if __name__ == "__main__":
    main()
