"""`metaaug evaluate`: metrics between a folder of real images and a folder of generated ones.

Per class (a folder of images is one class; folders of class folders are matched by name):
FID, KID, IS, precision and recall, diversity, memorization (with `shots=DIR`) and class
fidelity with its ceiling; mean ± sd over classes; a printed table and `evaluation.json` in
the run directory.

metric=domain scores with the classifier `metaaug train` uses for the same dataset, seed and
split (the evaluated classes that are dataset classes are held out of it, as train holds out
named targets), so a train run's numbers and these agree. Fidelity is the GAN-test of
`metrics/fidelity.py` with the real folder as the reference: a classifier of the dataset's
meta-train classes and the even rows of each real class, its ceiling measured on the odd rows.
"""

import logging
import math
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from metaaug.config import build, keys
from metaaug.config.evaluate import check, evaluate_sets, read_sets
from metaaug.errors import exits_on_user_error
from metaaug.io.atomic import write_json
from metaaug.io.rundir import run_dir_lock
from metaaug.io.synthetic import ensure_outputs_free
from metaaug.metrics.names import EVALUATED

log = logging.getLogger("metaaug.evaluate")

OUTPUT = "evaluation.json"


def table(report: dict) -> str:
    """The report as a text table: one row per class, then mean ± sd when there are several."""
    cells = [["class", "real", "fake", *EVALUATED]]
    for c in report["classes"]:
        cells.append([c["class_name"], str(c["num_real"]), str(c["num_fake"]),
                      *(_fmt(c["results"][k]) for k in EVALUATED)])  # fmt: skip
    if len(report["classes"]) > 1:
        mean, sd = report["results"], report["results_sd"]
        cells.append(["mean ± sd", "", "",
                      *(f"{_fmt(mean[k])}±{_fmt(sd[k])}" for k in EVALUATED)])  # fmt: skip
    widths = [max(len(row[i]) for row in cells) for i in range(len(cells[0]))]
    return "\n".join(
        "  ".join(v.rjust(w) for v, w in zip(row, widths, strict=True)) for row in cells
    )


def _fmt(value: float) -> str:
    return "-" if value is None or math.isnan(value) else f"{value:.4g}"


def run(cfg: DictConfig) -> dict:
    check(cfg)
    run_dir = Path(HydraConfig.get().runtime.output_dir)
    ensure_outputs_free(run_dir, (OUTPUT,))
    device = build.device(cfg)
    sets = read_sets(cfg)
    report = evaluate_sets(cfg, sets, device)
    report |= {"real": str(cfg.real), "fake": str(cfg.fake),
               "shots": None if cfg.shots is None else str(cfg.shots)}  # fmt: skip
    write_json(run_dir / OUTPUT, report)
    for c in report["classes"]:
        for key, reason in c["unavailable"].items():
            log.info("%s: %s unavailable: %s", c["class_name"], key, reason)
    log.info("wrote %s; the metrics of %d class(es):", run_dir / OUTPUT, len(sets))
    print(table(report), flush=True)  # last: what the user reads
    return report


@hydra.main(config_path="../conf", config_name="evaluate", version_base="1.3")
@exits_on_user_error(keys=keys.COMMON)
def main(cfg: DictConfig) -> None:
    with run_dir_lock(HydraConfig.get().runtime.output_dir):  # one process per run directory
        run(cfg)
