"""Synthetic images load with ImageFolder; checkpoints are atomic and weights-only."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from torchvision.datasets import ImageFolder
from torchvision.io import read_image
from torchvision.transforms.functional import pil_to_tensor
from torchvision.utils import make_grid, save_image

from metaaug.augment.classic import ClassicAugment
from metaaug.errors import UserError
from metaaug.io.checkpoint import load, save_atomic
from metaaug.io.synthetic import folder_name, grid, save_grid, write_synthetic


def test_synthetic_folder_round_trips_pixels(tmp_path: Path) -> None:
    images = torch.linspace(-1, 1, 3 * 16 * 16).reshape(3, 1, 16, 16)
    root = tmp_path / "synthetic"
    sets = {"Korean/character07": images, "Latin/character01": -images[:2]}
    manifest = write_synthetic(sets, root, {"seed": 4}, {"Latin/character01": {"shots": 5}})
    folder = ImageFolder(str(root))
    assert folder.classes == ["Korean_character07", "Latin_character01"]
    assert len(folder) == 5
    pixels = pil_to_tensor(folder.loader(folder.samples[1][0]).convert("L")).float()
    expected = ((images[1] + 1) * 127.5).round()
    assert torch.equal(pixels, expected)
    on_disk = json.loads((root / "manifest.json").read_text())
    assert on_disk == manifest
    assert on_disk["count"] == 5 and on_disk["seed"] == 4 and on_disk["image_size"] == 16
    assert on_disk["classes"] == [
        {"class_name": "Korean/character07", "folder": "Korean_character07", "count": 3},
        {"class_name": "Latin/character01", "folder": "Latin_character01", "count": 2, "shots": 5},
    ]


def test_synthetic_writer_refuses_classes_that_share_a_folder(tmp_path: Path) -> None:
    sets = {"a/b": torch.zeros(1, 1, 8, 8), "a_b": torch.zeros(1, 1, 8, 8)}
    with pytest.raises(UserError, match=r"classes \['a/b', 'a_b'\] share the folder name 'a_b'"):
        write_synthetic(sets, tmp_path / "synthetic", {})
    assert not (tmp_path / "synthetic").exists()


def test_synthetic_writer_refuses_a_non_empty_folder(tmp_path: Path) -> None:
    (tmp_path / "keep.txt").write_text("x")
    with pytest.raises(UserError, match="not empty"):
        write_synthetic({"a": torch.zeros(1, 1, 16, 16)}, tmp_path, {})
    assert [p.name for p in tmp_path.iterdir()] == ["keep.txt"]


@pytest.mark.parametrize(
    ("name", "folder"),
    [("T-shirt/top", "T-shirt_top"), ("3", "3"), (".", "class"), ("..", "class"),
     ("../../x", "x"), ("a.b", "a.b"), (".hidden", "hidden"),
     ("manifest.json", "manifest.json_"), ("overview.png", "overview.png_")],
)  # fmt: skip
def test_folder_names_have_no_slashes(name: str, folder: str) -> None:
    assert folder_name(name) == folder


def test_a_class_named_as_the_manifest_is_written_beside_it(tmp_path: Path) -> None:
    """A class folder named manifest.json ended the write in IsADirectoryError."""
    root = tmp_path / "synthetic"
    manifest = write_synthetic({"manifest.json": torch.zeros(2, 1, 8, 8)}, root, {})
    assert manifest["classes"][0]["folder"] == "manifest.json_"
    assert json.loads((root / "manifest.json").read_text())["complete"] is True
    assert len(list((root / "manifest.json_").glob("*.png"))) == 2


def test_checkpoint_is_atomic_and_weights_only(tmp_path: Path) -> None:
    path = tmp_path / "ckpt" / "last.pt"
    save_atomic({"w": torch.ones(2), "step": 3, "name": "reptile"}, path)
    assert load(path)["step"] == 3
    assert list(path.parent.iterdir()) == [path]  # no temporary file left behind


def test_classic_augment_is_identity_at_zero_strength() -> None:
    x = torch.rand(4, 1, 16, 16) * 2 - 1
    aug = ClassicAugment(rotate=0, translate=0, scale=0, hflip=0, noise=0)
    torch.testing.assert_close(aug(x, torch.Generator()), x, atol=1e-5, rtol=0)


def test_classic_augment_flip_and_shift_fill_with_background() -> None:
    x = torch.full((1, 1, 8, 8), -1.0)
    x[..., :, 0] = 1.0  # a bright left column
    flipped = ClassicAugment(rotate=0, translate=0, scale=0, hflip=1.0)(x, torch.Generator())
    torch.testing.assert_close(flipped, x.flip(-1), atol=1e-5, rtol=0)
    shifted = ClassicAugment(rotate=0, translate=0.5, scale=0)(x, torch.Generator().manual_seed(1))
    assert shifted.min() >= -1 and (shifted == -1).float().mean() > 0.3  # padding is background


def test_classic_affine_grid_equals_torch_affine_grid() -> None:
    import torch.nn.functional as F

    from metaaug.augment.classic import _affine_grid

    theta = torch.randn(3, 2, 3)
    expected = F.affine_grid(theta, [3, 1, 7, 9], align_corners=False)
    torch.testing.assert_close(_affine_grid(theta, 7, 9), expected, atol=1e-6, rtol=1e-5)


def test_hparams_take_the_scalar_leaves_of_the_config() -> None:
    from metaaug.io.tensorboard import flatten

    config = {"seed": 0, "gan": {"loss": "hinge", "_target_": "x.Y", "betas": [0.5, 0.9]},
              "target": {"path": None, "shots": 5}, "compare_baselines": True}  # fmt: skip
    assert flatten(config) == {
        "seed": 0, "gan.loss": "hinge", "target.shots": 5, "compare_baselines": True
    }  # fmt: skip


@pytest.mark.parametrize(("count", "nrow"), [(64, 8), (13, 8), (5, 5), (1, 8)])
def test_sample_grids_match_torchvision(tmp_path: Path, count: int, nrow: int) -> None:
    """The grids (written without importing torchvision) are torchvision's, pixel for pixel."""
    images = torch.rand(count, 1, 16, 16) * 2 - 1
    reference = make_grid(images, nrow=nrow, normalize=True, value_range=(-1, 1))
    torch.testing.assert_close(grid(images, nrow), reference, rtol=0, atol=0)
    save_image(reference, tmp_path / "torchvision.png")
    ours = read_image(str(save_grid(images, tmp_path / "ours.png", nrow)))
    assert torch.equal(ours, read_image(str(tmp_path / "torchvision.png")))


# --- folders the images cannot be renamed into -----------------------------------------


def test_long_class_names_get_a_folder_and_checkpoint_name_that_can_be_staged(
    tmp_path: Path,
) -> None:
    """A class name near the 255-byte limit (a legal folder name of the user's) becomes a
    folder and `finetuned/<folder>.pt` short enough to be staged as `.<name>.XXXXXXXX.tmp`;
    distinct long names stay distinct, short ones are as they were."""
    from types import SimpleNamespace

    from metaaug.pipeline.outputs import RunPaths

    long_a, long_b, wide = "y" * 250, "y" * 249 + "z", "é" * 150  # 300 bytes in UTF-8
    names = [folder_name(n) for n in (long_a, long_b, wide, "x" * 300)]
    assert len(set(names)) == 4 and all(len(n.encode()) <= 200 for n in names)
    assert folder_name("y" * 200) == "y" * 200 and folder_name(long_a).startswith("y" * 150)
    root = tmp_path / "synthetic"
    manifest = write_synthetic({long_a: torch.zeros(1, 1, 8, 8), wide: torch.zeros(1, 1, 8, 8)},
                               root, {})  # fmt: skip
    assert sorted(p.name for p in root.iterdir()) == sorted([*names[::2][:2], "manifest.json"])
    assert [c["folder"] for c in manifest["classes"]] == names[::2][:2]
    target = SimpleNamespace(class_name=long_a)
    path = RunPaths(tmp_path / "run", root).finetuned(target)  # type: ignore[arg-type]
    path.parent.mkdir(parents=True)
    save_atomic({"w": torch.zeros(1)}, path)
    assert path.name == names[0] + ".pt" and path.is_file()


def test_an_output_folder_name_too_long_to_stage_is_refused(tmp_path: Path) -> None:
    out = tmp_path / ("y" * 250)
    with pytest.raises(UserError, match=r"250 bytes long.*at most 241 bytes") as err:
        write_synthetic({"a": torch.zeros(1, 1, 8, 8)}, out, {})
    assert "\n" not in str(err.value) and list(tmp_path.iterdir()) == []
    write_synthetic({"a": torch.zeros(1, 1, 8, 8)}, tmp_path / ("y" * 241), {})


def test_a_symlinked_output_folder_is_refused_naming_its_target(tmp_path: Path) -> None:
    target = tmp_path / "empty"
    target.mkdir()
    link = tmp_path / "link"
    link.symlink_to(target)
    gone = tmp_path / "dangling"
    gone.symlink_to(tmp_path / "nowhere")
    for path, to in ((link, target), (gone, tmp_path / "nowhere")):
        with pytest.raises(UserError, match="is a symbolic link") as err:
            write_synthetic({"a": torch.zeros(1, 1, 8, 8)}, path, {})
        assert f"to '{to}'" in str(err.value) and f"'{to}'" in str(err.value).split(";")[-1]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dangling", "empty", "link"]
    assert list(target.iterdir()) == []


def test_an_output_folder_another_process_wrote_meanwhile_is_one_line(tmp_path: Path) -> None:
    """Two `generate` runs with the same new out=: the second rename finds the first's images
    there; they are kept, this run's staging folder is removed, one line says so."""
    from metaaug.io.atomic import staged_dir

    final = tmp_path / "race"
    raced = pytest.raises(UserError, match="written by another process meanwhile")
    with raced as err, staged_dir(final, "the synthetic images") as staging:
        (staging / "mine.png").write_bytes(b"mine")
        final.mkdir()
        (final / "theirs.png").write_bytes(b"theirs")
    assert str(final) in str(err.value) and "choose another folder" in str(err.value)
    assert [p.name for p in tmp_path.iterdir()] == ["race"]
    assert [p.name for p in final.iterdir()] == ["theirs.png"]
