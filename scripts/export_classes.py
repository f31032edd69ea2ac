"""Write a train run's meta-test classes as folders of PNGs, the way a user's own classes look:
`<out>/shots/<class>/` (a few images each) and `<out>/heldout/<class>/` (the rest).

The README's worked example uses them as "three classes of your own": the run never
meta-trained on them, `metaaug generate` adapts its meta_init.pt to each shots folder, and
`metaaug evaluate` compares the result with the held-out folder.

    python scripts/export_classes.py outputs/example --shots 5 --out my_classes
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from hydra.utils import instantiate
from omegaconf import OmegaConf
from PIL import Image

from metaaug.data.target import class_target
from metaaug.io.synthetic import to_uint8


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="a `metaaug train` run directory")
    parser.add_argument("--shots", type=int, default=5, help="images per shots folder")
    parser.add_argument("--out", type=Path, required=True, help="a new folder")
    args = parser.parse_args()
    cfg = OmegaConf.load(args.run / ".hydra" / "config.yaml")
    split = json.loads((args.run / "metrics.json").read_text())["split"]
    classes = instantiate(cfg.dataset.source)
    for name in split["test"]:
        target = class_target(name, classes[name], args.shots, int(cfg.seed))
        for part, images in (("shots", target.shots), ("heldout", target.heldout)):
            folder = args.out / part / name
            folder.mkdir(parents=True)  # never into an existing folder
            for i, pixels in enumerate(to_uint8(images)):
                Image.fromarray(pixels.squeeze(2)).save(folder / f"{i:03d}.png")
        print(f"{name}: {len(target.shots)} shots, {len(target.heldout)} held out")


if __name__ == "__main__":
    main()
