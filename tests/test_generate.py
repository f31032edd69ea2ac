"""`metaaug generate`: a saved generator sampled into an ImageFolder layout, through the real
command line, from the checkpoints of one tiny `metaaug train` run."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_module
from omegaconf import OmegaConf
from PIL import Image

from metaaug.config import build
from metaaug.io.checkpoint import save_atomic
from tests.conftest import Runner, assert_one_line_error


@pytest.fixture
def run_dir(tiny_run: Path) -> Path:
    return tiny_run


def _finetuned(run_dir: Path) -> Path:
    (path,) = (run_dir / "checkpoints" / "finetuned").glob("*.pt")
    return path


def _pngs(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*.png"))}


def _shots(folder: Path, n: int, seed: int = 0) -> Path:
    """`n` 8x8 PNGs of blobs in `folder` (read at the run's 16x16)."""
    folder.mkdir(parents=True)
    gen = np.random.default_rng(seed)
    for i in range(n):
        img = np.zeros((8, 8), np.uint8)
        img[gen.integers(1, 4) : gen.integers(5, 8), 3:5] = 255  # a vertical stroke
        Image.fromarray(img).save(folder / f"{i}.png")
    return folder


def test_a_finetuned_checkpoint_gives_the_runs_own_images(
    metaaug: Runner, run_dir: Path, tmp_path: Path
) -> None:
    ckpt = _finetuned(run_dir)
    run_manifest = json.loads((run_dir / "synthetic" / "manifest.json").read_text())
    (entry,) = run_manifest["classes"]
    proc = metaaug("generate", f"checkpoint={ckpt}", f"num_images={run_manifest['count']}",
                   f"out={tmp_path / 'out'}")  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    # the run's seed (0) and batch size: image for image the run's synthetic/ folder
    assert _pngs(tmp_path / "out") == _pngs(run_dir / "synthetic")
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["complete"] is True
    assert (manifest["checkpoint"], manifest["checkpoint_kind"]) == (str(ckpt), "finetuned")
    assert (manifest["seed"], manifest["steps"], manifest["adapted_here"]) == (0, 3, False)
    assert manifest["config_hash"] == run_manifest["config_hash"]
    (cls,) = manifest["classes"]
    assert cls["class_name"] == entry["class_name"] and cls["shot_rows"] == entry["shot_rows"]
    assert manifest["meta_train_classes"] == run_manifest["meta_train_classes"]


def test_meta_init_adapted_to_shots_is_seeded(
    metaaug: Runner, run_dir: Path, tmp_path: Path
) -> None:
    shots = tmp_path / "shots"
    _shots(shots / "stroke", 4)
    _shots(shots / "other", 3, seed=1)
    args = [f"checkpoint={run_dir / 'checkpoints' / 'meta_init.pt'}", f"shots={shots}",
            "num_images=12", "steps=2"]  # fmt: skip
    first = metaaug("generate", *args, f"out={tmp_path / 'a'}")
    assert first.returncode == 0, first.stderr[-3000:]
    again = metaaug("generate", *args, f"out={tmp_path / 'b'}")
    assert again.returncode == 0, again.stderr[-3000:]
    images = _pngs(tmp_path / "a")
    assert sorted(images) == [f"{c}/{i:06d}.png" for c in ("other", "stroke") for i in range(12)]
    assert images == _pngs(tmp_path / "b")  # same command, same PNGs
    other = metaaug("generate", *args, "seed=1", f"out={tmp_path / 'c'}")
    assert other.returncode == 0, other.stderr[-3000:]
    assert _pngs(tmp_path / "c") != images
    manifest = json.loads((tmp_path / "a" / "manifest.json").read_text())
    assert (manifest["checkpoint_kind"], manifest["steps"], manifest["adapted_here"]) == (
        "meta_init", 2, True)  # fmt: skip
    assert manifest["from_path"] is True
    assert {c["class_name"]: c["shots"] for c in manifest["classes"]} == {"other": 3, "stroke": 4}
    one = metaaug("generate", *args, "class_name=stroke", "num_images=3",
                  f"out={tmp_path / 'd'}")  # fmt: skip
    assert one.returncode == 0, one.stderr[-3000:]
    assert sorted(_pngs(tmp_path / "d")) == [f"stroke/{i:06d}.png" for i in range(3)]


def test_filter_writes_the_images_the_judge_keeps_in_order(
    metaaug: Runner, run_dir: Path, tmp_path: Path
) -> None:
    """filter=true writes the very images filter=false does, less those the run's backbone puts
    nearer another class, and records what it drew and kept per class."""
    shots = tmp_path / "shots"
    _shots(shots / "stroke", 4)
    _shots(shots / "other", 3, seed=1)
    args = [f"checkpoint={run_dir / 'checkpoints' / 'meta_init.pt'}", f"shots={shots}",
            "num_images=40", "steps=2"]  # fmt: skip
    every = metaaug("generate", *args, f"out={tmp_path / 'all'}")
    assert every.returncode == 0, every.stderr[-3000:]
    kept = metaaug("generate", *args, "filter=true", f"out={tmp_path / 'kept'}")
    assert kept.returncode == 0, kept.stderr[-3000:]
    manifest = json.loads((tmp_path / "kept" / "manifest.json").read_text())
    record = manifest["filter"]
    assert record["drawn"] == {"other": 40, "stroke": 40}
    written = _pngs(tmp_path / "kept")
    assert manifest["count"] == len(written) < 80  # the judge dropped some
    for name in ("other", "stroke"):
        all_of = [b for f, b in _pngs(tmp_path / "all").items() if f.startswith(f"{name}/")]
        mine = [b for f, b in written.items() if f.startswith(f"{name}/")]
        assert record["kept"][name] == len(mine) / 40
        rest = iter(all_of)  # in the order drawn: each written image is a later one of all_of
        assert all(any(image == b for b in rest) for image in mine)
    assert json.loads((tmp_path / "all" / "manifest.json").read_text())["filter"] is None


def test_filter_that_keeps_nothing_writes_nothing_and_says_so(
    refused: Runner, run_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A judge that keeps none of any class's images (a run's backbone can put every image of
    a class unlike its meta-train classes nearer one of them): one line, no output folder."""
    from metaaug.commands import generate

    class KeepsNothing:
        def cut(self, sets: dict, shots: dict) -> dict:
            drawn = {name: len(images) for name, images in sets.items()}
            sets.clear()
            return {"judge": "none", "drawn": drawn, "kept": dict.fromkeys(drawn, 0.0)}

    monkeypatch.setattr(generate, "class_judge", lambda saved, device: KeepsNothing())
    shots = _shots(tmp_path / "shots" / "stroke", 4).parent
    proc = refused("generate", f"checkpoint={run_dir / 'checkpoints' / 'meta_init.pt'}",
                   f"shots={shots}", "num_images=8", "steps=2", "filter=true",
                   f"out={tmp_path / 'kept'}")  # fmt: skip
    assert_one_line_error(proc, "filter=true kept none of the 8 images drawn", "filter=false")
    assert not (tmp_path / "kept").exists()


def test_a_path_with_a_space_and_a_non_ascii_letter_works_quoted_as_the_error_says(
    metaaug: Runner, refused: Runner, run_dir: Path, tmp_path: Path
) -> None:
    shots = _shots(tmp_path / "weird name ü" / "stroke ü", 3).parent
    out = tmp_path / "out ü"
    checkpoint = f"checkpoint={run_dir / 'checkpoints' / 'meta_init.pt'}"
    proc = refused("generate", checkpoint, f"shots={shots}", "steps=1", "num_images=2",
                   f"out={out}")  # fmt: skip
    assert_one_line_error(proc, f"cannot read shots={shots}", "quoted for Hydra")
    quoted = proc.stderr.strip().split("shell's quotes: ", 1)[1].strip("'")
    assert quoted == f'shots="{shots}"'
    proc = metaaug("generate", checkpoint, quoted, "steps=1", "num_images=2", f'out="{out}"')
    assert proc.returncode == 0, proc.stderr[-3000:]
    # the class folder keeps its letter; its space becomes _ as in every class folder name
    assert sorted(_pngs(out)) == ["stroke_ü/000000.png", "stroke_ü/000001.png"]


def test_bad_requests_are_refused_in_one_line(
    refused: Runner, run_dir: Path, tmp_path: Path
) -> None:
    meta_init = run_dir / "checkpoints" / "meta_init.pt"
    used = tmp_path / "used"
    used.mkdir()
    (used / "keep.txt").write_text("mine")
    assert_one_line_error(
        refused("generate", f"checkpoint={_finetuned(run_dir)}", f"out={used}"),
        f"out '{used}'", "not empty",
    )  # fmt: skip
    assert (used / "keep.txt").read_text() == "mine"
    assert_one_line_error(refused("generate", f"checkpoint={tmp_path / 'nope.pt'}"),
                          "checkpoint=", "is not a file", "meta_init.pt")  # fmt: skip
    assert_one_line_error(refused("generate", f"checkpoint={meta_init}"),
                          "meta-learned initialization", "shots=DIR")  # fmt: skip
    assert_one_line_error(
        refused("generate", f"checkpoint={_finetuned(run_dir)}", f"shots={tmp_path}"),
        "finetuned GAN", "drop shots=",
    )  # fmt: skip
    assert_one_line_error(
        refused("generate", f"checkpoint={run_dir / 'checkpoints' / 'last.pt'}"),
        "is a training_state checkpoint, not a finetuned one",
    )  # fmt: skip
    empty = tmp_path / "empty"
    empty.mkdir()
    assert_one_line_error(refused("generate", f"checkpoint={meta_init}", f"shots={empty}"),
                          "shots=", "holds no png")  # fmt: skip
    assert_one_line_error(refused("generate", f"checkpoint={meta_init}", "num_images=0"),
                          "num_images=0", "integer >= 1")  # fmt: skip


def test_checkpoints_edited_by_hand_are_refused_in_one_line(
    refused: Runner, run_dir: Path, tmp_path: Path
) -> None:
    """A finetuned checkpoint without its shots, and an initialization whose stored run config
    lost a key the GAN is rebuilt with: one line naming what is missing, no output folder."""
    finetuned = torch.load(_finetuned(run_dir), weights_only=True)
    no_shots = save_atomic({k: v for k, v in finetuned.items() if k != "shots"},
                           tmp_path / "no_shots.pt")  # fmt: skip
    out = tmp_path / "out"
    assert_one_line_error(refused("generate", f"checkpoint={no_shots}", f"out={out}"),
                          "has no usable shots", "finetuned checkpoint")  # fmt: skip
    init = torch.load(run_dir / "checkpoints" / "meta_init.pt", weights_only=True)
    del init["config"]["dataset"]["image_size"]
    edited = save_atomic(init, tmp_path / "meta_init.pt")
    shots = _shots(tmp_path / "shots", 3)
    assert_one_line_error(
        refused("generate", f"checkpoint={edited}", f"shots={shots}", f"out={out}"),
        "holds a run config without dataset.image_size",
    )  # fmt: skip
    assert not out.exists()


def test_an_image_conditioned_gan_needs_two_shots(metaaug: Runner, tmp_path: Path) -> None:
    """DAGAN adapts on pairs of shots: one shot is too few (steps=0 samples it as it is)."""
    with initialize_config_module("metaaug.conf", version_base="1.3"):
        cfg = compose("train", overrides=["gan=dagan", "gan.width=4", "gan.z_dim=4"])
    gan = build.gan(cfg, torch.device("cpu"))
    ckpt = save_atomic({"kind": "meta_init", "gan": gan.state_dict(),
                        "config": OmegaConf.to_container(cfg, resolve=True),
                        "classes": {"train": ["0", "2"]}}, tmp_path / "meta_init.pt")  # fmt: skip
    shot = _shots(tmp_path / "one", 1)
    assert_one_line_error(metaaug("generate", f"checkpoint={ckpt}", f"shots={shot}"),
                          "holds 1 image", "pairs of shots", "steps=0")  # fmt: skip
    proc = metaaug("generate", f"checkpoint={ckpt}", f"shots={shot}", "steps=0",
                   "num_images=4", f"out={tmp_path / 'out'}")  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert len(_pngs(tmp_path / "out")) == 4
    # the checkpoint says it learned classes 0 and 2; the dataset splits others: no judge
    assert_one_line_error(metaaug("generate", f"checkpoint={ckpt}", f"shots={shot}", "steps=0",
                                  "filter=true", f"out={tmp_path / 'kept'}"),
                          "filter=true", "no longer gives the same classes")  # fmt: skip


# --- out= folders and names the images cannot be renamed into --------------------------


def test_a_linked_or_too_long_out_is_refused_and_a_long_class_name_is_capped(
    refused: Runner, run_dir: Path, tmp_path: Path
) -> None:
    """Refused before any work (was: a traceback after the images were drawn): out= a link to
    an empty folder, whose rename fails, and a name too long to stage beside itself; a
    300-character class_name is written under a shortened folder name (was: a traceback)."""
    from metaaug.io.synthetic import folder_name

    ckpt = f"checkpoint={_finetuned(run_dir)}"
    target = tmp_path / "empty"
    target.mkdir()
    link = tmp_path / "link"
    link.symlink_to(target)
    assert_one_line_error(refused("generate", ckpt, "num_images=2", f"out={link}"),
                          f"out '{link}' is a symbolic link to '{target}'",
                          f"give the folder itself: '{target}'")  # fmt: skip
    long = tmp_path / ("y" * 250)
    assert_one_line_error(refused("generate", ckpt, "num_images=2", f"out={long}"),
                          "its name is 250 bytes long", "at most 241 bytes")  # fmt: skip
    assert sorted(p.name for p in tmp_path.iterdir() if p.name[0] != "i") == ["empty", "link"]
    out, name = tmp_path / "out", "x" * 300
    proc = refused("generate", ckpt, "num_images=2", f"class_name={name}", f"out={out}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    (entry,) = json.loads((out / "manifest.json").read_text())["classes"]
    assert entry["class_name"] == name and entry["folder"] == folder_name(name)
    assert len(list((out / entry["folder"]).glob("*.png"))) == 2


def test_an_out_another_generate_wrote_meanwhile_is_one_line(
    refused: Runner, run_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two generate commands with the same new out=: the one that renames second finds the
    other's images there (made here between the staging and the rename) and says so in one
    line; the other's images are kept and no staging folder is left (was: a traceback)."""
    from contextlib import contextmanager

    from metaaug.io import synthetic

    out, staged = tmp_path / "race", synthetic.staged_dir

    @contextmanager
    def raced(final: Path, what: str):
        with staged(final, what) as staging:
            yield staging
            final.mkdir()
            (final / "theirs.png").write_bytes(b"theirs")

    monkeypatch.setattr(synthetic, "staged_dir", raced)
    proc = refused("generate", f"checkpoint={_finetuned(run_dir)}", "num_images=2", f"out={out}")
    assert_one_line_error(proc, f"'{out}' was written by another process meanwhile",
                          "choose another folder")  # fmt: skip
    assert [p.name for p in out.iterdir()] == ["theirs.png"]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".race")]


def test_a_target_class_with_a_name_near_the_limit_trains_and_generates_again(
    metaaug: Runner, tmp_path: Path
) -> None:
    """A legal 250-character class folder under target.path: its finetuned checkpoint and
    synthetic folder get a name short enough to stage (was: a traceback after meta-training,
    the run left without metrics.json)."""
    from metaaug.io.synthetic import folder_name
    from tests.conftest import TINY

    name = "y" * 250
    _shots(tmp_path / "target" / name, 8)
    run = tmp_path / "run"
    proc = metaaug("train", *TINY, "compare_baselines=false", f"target.path={tmp_path / 'target'}",
                   "target.shots=5", f"hydra.run.dir={run}")  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (run / "metrics.json").is_file()
    finetuned = run / "checkpoints" / "finetuned" / f"{folder_name(name)}.pt"
    assert finetuned.is_file() and (run / "synthetic" / folder_name(name)).is_dir()
    proc = metaaug("generate", f"checkpoint={finetuned}", "num_images=2",
                   f"out={tmp_path / 'again'}")  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert sorted(_pngs(tmp_path / "again")) == [f"{folder_name(name)}/00000{i}.png"
                                                 for i in range(2)]  # fmt: skip
