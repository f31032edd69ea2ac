"""`metaaug train` end to end, through the real command line, with a tiny budget."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from torchvision.datasets import ImageFolder

from tests.conftest import TINY, Runner

METRIC_KEYS = {"fid", "kid", "kid_std", "is", "memorization", "memorization_pixels", "copies",
               "novel_fidelity", "diversity_fake", "num_fake", "fidelity", "ceiling"}  # fmt: skip


def _events(run_dir: Path) -> EventAccumulator:
    acc = EventAccumulator(str(run_dir / "tensorboard"), size_guidance={"images": 0})
    acc.Reload()
    return acc


def _check_run(run_dir: Path, n_images: int, arms: set[str]) -> dict:
    report = json.loads((run_dir / "metrics.json").read_text())
    assert set(report["results"]) == arms | {"copy_shots"}
    for metrics in report["results"].values():
        assert set(metrics) >= METRIC_KEYS
        assert 0.0 <= metrics["fidelity"] <= 1.0 and 0.0 <= metrics["ceiling"] <= 1.0
    assert report["results"]["copy_shots"]["memorization"] < 1e-6
    # copying the shots is all copies, and no novel image of the class
    assert report["results"]["copy_shots"]["copies"] == 1.0
    assert report["results"]["copy_shots"]["novel_fidelity"] == 0.0
    for metrics in report["results"].values():
        assert 0.0 <= metrics["novel_fidelity"] <= metrics["fidelity"]
    assert report["fidelity"]["unavailable"] == {}
    assert Path(report["fidelity"]["classifier_path"]).is_file()
    assert report["objective"]["name"] == "fid"
    assert report["objective"]["value"] == report["results"][report["objective"]["arm"]]["fid"]
    # the target never leaks into meta-training
    split = report["split"]
    assert not set(split["train"]) & set(split["test"])

    targets = report["targets"]
    folder = ImageFolder(str(run_dir / "synthetic"))
    assert len(folder) == n_images * len(targets) and len(folder.classes) == len(targets)
    image, _ = folder[0]
    size = report["image_size"]
    assert image.size == (size, size)
    manifest = json.loads((run_dir / "synthetic" / "manifest.json").read_text())
    assert manifest["count"] == n_images * len(targets)
    assert [c["class_name"] for c in manifest["classes"]] == [t["class_name"] for t in targets]
    assert manifest["config_hash"] == report["config_hash"]

    assert "gan" in torch.load(run_dir / "checkpoints" / "meta_init.pt", weights_only=True)
    for entry in manifest["classes"]:
        ckpt = torch.load(entry["source_checkpoint"], weights_only=True)
        assert ckpt["target"] == entry["class_name"] and "gan" in ckpt
        assert (run_dir / "samples" / entry["folder"] / "target_shots.png").exists()
    assert (run_dir / "samples" / "overview.png").exists()
    assert (run_dir / "train.log").read_text().count("validation at meta-iteration") >= 1
    return report


def test_a_numeric_class_name_is_held_out_and_fidelity_is_an_objective(
    metaaug: Runner, tmp_path: Path
) -> None:
    run_dir = tmp_path / "run"
    # "9" is a meta-train class of seed 0's default split: naming it holds it out instead
    proc = metaaug(
        "train", *TINY, "target.class_name=9", "objective=fidelity", "compare_baselines=false",
        f"hydra.run.dir={run_dir}",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads((run_dir / "metrics.json").read_text())
    assert report["target"]["classes"] == ["9"]
    assert "9" in report["split"]["test"] and "9" not in report["split"]["train"]
    assert report["objective"] == {
        "name": "fidelity", "arm": "reptile", "value": report["results"]["reptile"]["fidelity"],
        "over": "the target",
    }  # fmt: skip
    # the same run can instead be judged on its meta-val classes (what a search chooses on)
    val_dir = tmp_path / "val"
    proc = metaaug(
        "train", *TINY, "target.class_name=9", "objective=fidelity", "objective_on=validation",
        "compare_baselines=false", f"hydra.run.dir={val_dir}",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads((val_dir / "metrics.json").read_text())
    history = report["validation"]["history"]
    assert sorted(history, key=int) == ["2", "4"]  # every 2 of 4 meta-iterations
    assert report["validation"]["classes"] == report["split"]["val"][:1]
    assert report["objective"]["value"] == history["4"]["fidelity"]
    assert report["objective"]["over"].startswith("validation at meta-iteration 4")


def test_train_on_digits_writes_every_output(metaaug: Runner, tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    proc = metaaug("train", *TINY, f"hydra.run.dir={run_dir}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = _check_run(run_dir, 24, {"reptile", "scratch", "pretrain"})
    assert report["target"]["classes"] == [report["split"]["test"][0]]
    assert not any("shot_spread" in m for m in report["results"].values())  # unconditioned
    last = torch.load(run_dir / "checkpoints" / "last.pt", weights_only=True)
    assert last["iteration"] == 4

    tags = _events(run_dir).Tags()
    for tag in ("loss/D", "loss/G", "meta/adapt_distance", "metrics/fid", "metrics/kid",
                "metrics/fidelity", "metrics/ceiling", "val/fidelity", "baseline/scratch/fidelity",
                "metrics/is", "metrics/memorization", "baseline/scratch/fid", "val/fid",
                "baseline/pretrain/fid", "baseline/pretrain/loss/D",
                "time/total_s", "finetune/loss_D"):  # fmt: skip
        assert tag in tags["scalars"], tag
    assert any(t.startswith("val/") for t in tags["images"])
    assert "target/reptile" in tags["images"]
    assert "config/text_summary" in tags["tensors"]


def test_many_targets_are_adapted_and_reported_per_class_and_as_mean_and_sd(
    metaaug: Runner, tmp_path: Path
) -> None:
    run_dir = tmp_path / "run"
    # 8 and 9 are meta-train classes of seed 0's default split: naming them holds them out
    proc = metaaug(
        "train", *TINY, "target.classes=[8,9]", "finetune.eval_steps=[1,3]",
        "baselines.pretrain.iterations=3", f"hydra.run.dir={run_dir}",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = _check_run(run_dir, 24, {"reptile", "scratch", "pretrain"})
    assert report["target"]["classes"] == ["8", "9"]
    assert {"8", "9"} <= set(report["split"]["test"]) and not {"8", "9"} & set(
        report["split"]["train"] + report["split"]["val"]
    )
    per_target = [t["results"] for t in report["targets"]]
    for arm in ("reptile", "scratch", "pretrain", "copy_shots"):
        for key in ("fidelity", "fid", "memorization"):
            a, b = (r[arm][key] for r in per_target)
            assert report["results"][arm][key] == pytest.approx((a + b) / 2)
            assert report["results_sd"][arm][key] == pytest.approx(abs(a - b) / 2**0.5)
    curves = [t["curves"]["reptile"]["1"]["fid"] for t in report["targets"]]
    assert report["curves"]["reptile"]["1"]["fid"] == pytest.approx(sum(curves) / 2)
    assert report["objective"]["value"] == report["results"]["reptile"]["fid"]
    assert "mean over 2 targets, reptile: fidelity=" in (run_dir / "train.log").read_text()

    scalars = _events(run_dir)
    tags = scalars.Tags()["scalars"]
    for tag in ("8/metrics/fidelity", "9/baseline/pretrain/fid", "metrics/fidelity",
                "finetune/8/loss_D", "baseline/scratch/9/loss_G"):  # fmt: skip
        assert tag in tags, tag
    # the composed baseline config is the one that runs: 3 pretrain updates, not the default
    assert len(scalars.Scalars("baseline/pretrain/loss/D")) == 3


def test_a_target_path_of_class_folders_gives_one_synthetic_class_each(
    metaaug: Runner, tmp_path: Path
) -> None:
    from PIL import Image

    from metaaug.data.sources import digits
    from metaaug.io.synthetic import to_uint8

    classes = digits(image_size=16, channels=1)
    for folder, name in (("one", "1"), ("seven", "7")):
        (tmp_path / "mine" / folder).mkdir(parents=True)
        for i, arr in enumerate(to_uint8(classes[name][:9])):
            Image.fromarray(arr.squeeze(2)).save(tmp_path / "mine" / folder / f"{i}.png")
    run_dir = tmp_path / "run"
    proc = metaaug(
        "train", *TINY, f"target.path={tmp_path / 'mine'}", "compare_baselines=false",
        f"hydra.run.dir={run_dir}",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = _check_run(run_dir, 24, {"reptile"})
    assert [t["class_name"] for t in report["targets"]] == ["one", "seven"]
    assert [t["heldout"] for t in report["targets"]] == [4, 4]
    # the user's classes are known to the fidelity classifier: measured, not unavailable
    for target in report["targets"]:
        assert 0.0 <= target["results"]["reptile"]["fidelity"] <= 1.0
        assert 0.0 <= target["results"]["copy_shots"]["ceiling"] <= 1.0


@pytest.mark.parametrize(
    ("asked", "used"),
    [("auto", "32"), ("bf16", "bf16")],  # auto: the digits GAN is small
)
def test_the_precision_is_logged_and_recorded(
    metaaug: Runner, tmp_path: Path, asked: str, used: str
) -> None:
    run_dir = tmp_path / "run"
    proc = metaaug("train", *TINY, f"hardware.precision={asked}", "hardware.channels_last=true",
                   "compare_baselines=false", f"hydra.run.dir={run_dir}")  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    hw = json.loads((run_dir / "metrics.json").read_text())["hardware"]
    assert (hw["precision"], hw["precision_asked"], hw["channels_last"]) == (used, asked, True)
    assert (
        f"precision {used} channels-last (hardware.precision={asked}"
        in (run_dir / "train.log").read_text()
    )
    # weights stay fp32 whatever the precision
    for path in [run_dir / "checkpoints" / "meta_init.pt",
                 *(run_dir / "checkpoints" / "finetuned").glob("*.pt")]:  # fmt: skip
        weights = torch.load(path, weights_only=True)["gan"]
        assert {w.dtype for w in weights.values()} == {torch.float32}


def test_resume_continues_exactly_where_the_run_stopped(metaaug: Runner, tmp_path: Path) -> None:
    """4 meta-iterations, then 2 more resumed, equal 6 in one go, weight for weight."""
    runs = {name: tmp_path / name for name in ("first", "resumed", "straight")}
    assert metaaug("train", *TINY, f"hydra.run.dir={runs['first']}").returncode == 0
    proc = metaaug(
        "train", *TINY, "meta_algo.iterations=6", f"resume={runs['first']}/checkpoints/last.pt",
        f"hydra.run.dir={runs['resumed']}",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "resumed from" in (runs["resumed"] / "train.log").read_text()
    proc = metaaug("train", *TINY, "meta_algo.iterations=6", f"hydra.run.dir={runs['straight']}")
    assert proc.returncode == 0, proc.stderr[-3000:]

    def weights(name: str) -> dict[str, torch.Tensor]:
        return torch.load(runs[name] / "checkpoints" / "meta_init.pt", weights_only=True)["gan"]

    resumed, straight = weights("resumed"), weights("straight")
    assert any(not torch.equal(resumed[k], weights("first")[k]) for k in resumed)
    for key in straight:
        torch.testing.assert_close(resumed[key], straight[key], rtol=0, atol=1e-6)


def test_train_on_the_shared_omniglot_subset(
    metaaug: Runner, tmp_path: Path, omniglot_root: Path
) -> None:
    run_dir = tmp_path / "run"
    proc = metaaug(
        "train", "dataset=omniglot", f"dataset.root={omniglot_root}", "dataset.image_size=28",
        "target.shots=5", *TINY, f"hydra.run.dir={run_dir}",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = _check_run(run_dir, 24, {"reptile", "scratch", "pretrain"})
    target = report["targets"][0]
    assert "/" in target["class_name"]  # Alphabet/characterNN
    assert target["heldout"] == 15  # 20 drawers - 5 shots
    # split by alphabet (the dataset's default): the run records which went where
    split = report["split"]
    assert split["by"] == "group"
    groups = split["groups"]
    assert not set(groups["test"]) & (set(groups["train"]) | set(groups["val"]))
    assert target["class_name"].split("/")[0] in groups["test"]
    for part in ("train", "val", "test"):
        assert {name.split("/")[0] for name in split[part]} == set(groups[part])
    assert (run_dir / "synthetic" / target["class_name"].replace("/", "_")).is_dir()


@pytest.mark.parametrize(
    ("algo", "arms"),
    [("maml", {"maml", "scratch", "pretrain"}), ("metasgd", {"metasgd", "scratch", "pretrain"}),
     ("pretrain", {"pretrain", "scratch"})],
)  # fmt: skip
def test_every_meta_algorithm_trains_end_to_end(
    metaaug: Runner, tmp_path: Path, algo: str, arms: set[str]
) -> None:
    run_dir = tmp_path / "run"
    proc = metaaug(
        "train", f"meta_algo={algo}", "meta_algo.meta_batch_size=2", "meta_algo.inner_steps=1",
        *TINY, f"hydra.run.dir={run_dir}",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = _check_run(run_dir, 24, arms)
    assert report["objective"]["arm"] == algo


@pytest.mark.parametrize(
    ("gan", "algo"),
    [("conditional", "reptile"), ("conditional", "maml"), ("dagan", "reptile"),
     ("dagan", "fomaml")],
)  # fmt: skip
def test_conditional_gans_train_end_to_end(
    metaaug: Runner, tmp_path: Path, gan: str, algo: str
) -> None:
    """N-way class-conditional and DAGAN pairs meta-train, fine-tune and sample, baselines too."""
    run_dir = tmp_path / "run"
    ways = ["gan.ways=3"] if gan == "conditional" else []
    proc = metaaug(
        "train", f"gan={gan}", f"meta_algo={algo}", "gan.width=4", *ways,
        "meta_algo.meta_batch_size=2", "meta_algo.inner_steps=1", *TINY,
        f"hydra.run.dir={run_dir}",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    _check_run(run_dir, 24, {algo, "scratch", "pretrain"})


def test_no_target_meta_trains_and_validates_without_touching_meta_test(
    metaaug: Runner, refused: Runner, tmp_path: Path
) -> None:
    """What a search runs: target.classes=0, judged on meta-val classes only."""
    proc = refused("train", *TINY, "target.classes=0")
    assert proc.returncode == 2 and "set objective_on=validation" in proc.stderr
    run_dir = tmp_path / "run"
    proc = metaaug("train", *TINY, "target.classes=0", "objective_on=validation",
                   "objective=novel_fidelity", f"hydra.run.dir={run_dir}")  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads((run_dir / "metrics.json").read_text())
    assert report["targets"] == [] and report["results"] == {}
    history = report["validation"]["history"]
    assert report["objective"]["value"] == history[max(history, key=int)]["novel_fidelity"]
    assert report["synthetic"] == {"path": None, "count": 0}
    assert not (run_dir / "synthetic").exists()
    assert not (run_dir / "checkpoints" / "finetuned").exists()
    assert not (run_dir / "checkpoints" / "baseline_pretrain").exists()  # nothing to compare on
    assert (run_dir / "checkpoints" / "meta_init.pt").is_file()


def test_dagan_generates_for_a_new_class_without_fine_tuning(
    metaaug: Runner, tmp_path: Path
) -> None:
    run_dir = tmp_path / "run"
    proc = metaaug(
        "train", *TINY, "gan=dagan", "gan.width=4", "target.shots=1", "finetune.steps=0",
        "validation.steps=0", "compare_baselines=false", f"hydra.run.dir={run_dir}",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = _check_run(run_dir, 24, {"reptile"})
    assert report["target"]["shots"] == 1 and report["finetune_steps"] == 0
    # one shot: every image comes from it, so there is no spread between shots to compare
    assert report["results"]["reptile"]["shot_spread"] is None
    assert "2 shots or more" in report["targets"][0]["unavailable"]["shot_spread"]


def test_an_image_conditioned_gan_reports_how_far_z_moves_its_images(
    metaaug: Runner, tmp_path: Path
) -> None:
    """shot_spread for each image-conditioned arm (scratch and pretrain too), never for the
    copy-the-shots reference (nor for an unconditioned GAN: the digits run above; nor for
    fusion, whose images each read every shot: tests/test_fusion.py)."""
    run_dir = tmp_path / "run"
    proc = metaaug(
        "train", *TINY, "gan=dagan", "gan.width=4", "target.shots=3", "finetune.steps=2",
        "validation.steps=0", f"hydra.run.dir={run_dir}",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads((run_dir / "metrics.json").read_text())
    for arm in ("reptile", "scratch", "pretrain"):
        assert 0 < report["results"][arm]["shot_spread"] < 2
    assert "shot_spread" not in report["results"]["copy_shots"]
    assert "shot_spread" not in report["targets"][0]["unavailable"]
    assert "shot_spread=" in proc.stderr + proc.stdout  # in each arm's printed line


def test_figr_preset_runs_on_the_shared_omniglot_subset(
    metaaug: Runner, tmp_path: Path, omniglot_root: Path
) -> None:
    """The FIGR reproduction preset, at a tiny budget and width, end to end."""
    run_dir = tmp_path / "run"
    proc = metaaug(
        "train", "experiment=figr_omniglot", f"dataset.root={omniglot_root}", *TINY,
        "gan.width=4", f"hydra.run.dir={run_dir}",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = _check_run(run_dir, 24, {"reptile", "scratch", "pretrain"})
    assert report["image_size"] == 32 and report["target"]["shots"] == 4
    config = (run_dir / ".hydra" / "config.yaml").read_text()
    assert "name: figr" in config and "FIGRGenerator" in config


def test_scratch_algorithm_skips_meta_training(metaaug: Runner, tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    proc = metaaug("train", "meta_algo=scratch", *TINY, f"hydra.run.dir={run_dir}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads((run_dir / "metrics.json").read_text())
    # every baseline but the arm named like meta_algo, which runs once
    assert set(report["results"]) == {"scratch", "pretrain", "copy_shots"}
    assert not (run_dir / "checkpoints" / "last.pt").exists()


def test_two_job_multirun_writes_one_run_dir_per_job(metaaug: Runner, tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"
    proc = metaaug(
        "train", "-m", "seed=0,1", *TINY, "compare_baselines=false", f"hydra.sweep.dir={sweep}"
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    reports = [json.loads((sweep / str(i) / "metrics.json").read_text()) for i in (0, 1)]
    assert [r["seed"] for r in reports] == [0, 1]
    assert reports[0]["objective"]["value"] != reports[1]["objective"]["value"]
    hparams = list((sweep / "0" / "tensorboard").glob("hparams/events.*"))
    assert hparams, "the hparams summary is written per job"


@pytest.mark.parametrize("flag", ["--help", "--cfg job"])
def test_hydra_flags_work_through_the_dispatcher(metaaug: Runner, flag: str) -> None:
    proc = metaaug("train", *flag.split())
    assert proc.returncode == 0, proc.stderr
    if flag == "--help":
        assert "meta_algo: fomaml, maml, metasgd, pretrain, reptile, scratch" in proc.stdout
        assert "dataset: digits, fashion_mnist, imagefolder, mnist, omniglot" in proc.stdout
    else:
        assert "meta_batch_size:" in proc.stdout and "shots: 5" in proc.stdout


def test_top_level_help_lists_the_commands(metaaug: Runner) -> None:
    proc = metaaug("--help")
    assert proc.returncode == 0
    assert "train " in proc.stdout and "metaaug <command> --help" in proc.stdout
