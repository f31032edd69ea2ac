"""Image modes the loaders must not corrupt: 16-bit, 32-bit and float grayscale are scaled by
their bit depth (never clipped at 255), and transparent pixels are composited onto
`dataset.alpha_background` (a shape drawn only in alpha must not turn all black).

Loaders return [-1, 1]: 0 -> -1, full scale -> +1, and one uint8 step is 1 / 127.5.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from metaaug.data.images import alpha_level, decode
from metaaug.data.sources import image_folder_flat, imagefolder, omniglot
from metaaug.data.target import path_targets
from metaaug.errors import UserError
from tests.conftest import Runner, assert_one_line_error

STEP = 1 / 127.5  # one uint8 level in the loaders' [-1, 1]
SIZE = 8
SQUARE = (slice(2, 6), slice(2, 6))  # rows, columns of the shape drawn in alpha


def _alpha_square() -> np.ndarray:
    """Alpha 255 on the square, 0 elsewhere."""
    alpha = np.zeros((SIZE, SIZE), dtype=np.uint8)
    alpha[SQUARE] = 255
    return alpha


def _rgba_shape() -> Image.Image:
    """RGB all 0; the square exists only in the alpha channel."""
    rgba = np.zeros((SIZE, SIZE, 4), dtype=np.uint8)
    rgba[..., 3] = _alpha_square()
    return Image.fromarray(rgba, "RGBA")


def _la_shape() -> Image.Image:
    return Image.merge(
        "LA", (Image.new("L", (SIZE, SIZE), 0), Image.fromarray(_alpha_square(), "L"))
    )


def _palette_shape() -> Image.Image:
    """Palette: index 0 black and transparent (the ground), index 1 black and opaque (square)."""
    index = np.zeros((SIZE, SIZE), dtype=np.uint8)
    index[SQUARE] = 1
    img = Image.fromarray(index, "P")
    img.putpalette([0, 0, 0, 0, 0, 0])
    img.info["transparency"] = 0
    return img


def _gray_trns_shape() -> Image.Image:
    """L with a tRNS chunk: gray level 7 is transparent (the ground), the square is 0."""
    gray = np.full((SIZE, SIZE), 7, dtype=np.uint8)
    gray[SQUARE] = 0
    img = Image.fromarray(gray, "L")
    img.info["transparency"] = 7
    return img


SHAPES = {"rgba": _rgba_shape, "la": _la_shape, "p": _palette_shape, "l_trns": _gray_trns_shape}


def _save(img: Image.Image, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    transparency = img.info.get("transparency")
    img.save(path, **({"transparency": transparency} if transparency is not None else {}))
    return path


def _sixteen_bit(values: list[list[int]], path: Path) -> Path:
    img = Image.fromarray(np.array(values, dtype=np.uint16))
    assert img.mode == "I;16"
    return _save(img, path)


def _square_mask() -> torch.Tensor:
    mask = torch.zeros(SIZE, SIZE, dtype=torch.bool)
    mask[SQUARE] = True
    return mask


# 16-bit and other high-depth grayscale


def test_sixteen_bit_png_is_scaled(tmp_path: Path) -> None:
    _sixteen_bit([[0, 65535], [32768, 1000]], tmp_path / "mine" / "a.png")
    images = image_folder_flat(str(tmp_path / "mine"), image_size=2, channels=1)
    assert images.shape == (1, 1, 2, 2)
    px = images[0, 0]
    assert px[0, 0].item() == pytest.approx(-1.0)  # 0 -> black
    assert px[0, 1].item() == pytest.approx(1.0)  # 65535 -> white
    assert px[1, 0].item() == pytest.approx(0.0, abs=STEP)  # 32768 -> mid gray (0.5 of range)
    # 1000 / 65535 of full scale is dark; clipping at 255 made it white (+1)
    assert px[1, 1].item() == pytest.approx(2 * 1000 / 65535 - 1, abs=STEP)


def test_sixteen_bit_png_in_imagefolder_rgb(tmp_path: Path) -> None:
    for name in ("a", "b"):
        _sixteen_bit([[0, 65535], [32768, 65535]], tmp_path / "data" / name / "x.png")
    classes = imagefolder(str(tmp_path / "data"), image_size=2, channels=3)
    assert sorted(classes) == ["a", "b"]
    px = classes["a"][0]  # [3, 2, 2], gray repeated in R, G, B
    assert torch.equal(px[0], px[1]) and torch.equal(px[1], px[2])
    assert px[0].flatten().tolist() == pytest.approx([-1.0, 1.0, 0.0, 1.0], abs=STEP)


def test_sixteen_bit_png_transparent_level_shows_background(tmp_path: Path) -> None:
    img = Image.fromarray(np.array([[500, 0], [500, 0]], dtype=np.uint16))
    img.save(tmp_path / "t.png", transparency=500)  # 16-bit tRNS: gray level 500 transparent
    white = decode(tmp_path / "t.png", 2, 1, "t.png")
    black = decode((tmp_path / "t.png").read_bytes(), 2, 1, "t.png", background=0)
    assert white[..., 0].tolist() == [[255, 0], [255, 0]]
    assert black[..., 0].tolist() == [[0, 0], [0, 0]]


@pytest.mark.parametrize(
    ("array", "expected"),
    [(np.array([[0, 2**30, 2**31 - 1]], dtype=np.int32), [0, 128, 255]),
     (np.array([[0.0, 0.5, 1.0]], dtype=np.float32), [0, 128, 255])],
    ids=["int32", "float"],
)  # fmt: skip
def test_int32_and_float_grayscale_are_scaled(array: np.ndarray, expected: list[int]) -> None:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, "TIFF")  # PNG cannot hold I or F; TIFF can
    arr = decode(buffer.getvalue(), 3, 1, "x.tif")  # 3x1 -> 3x3 keeps each column
    assert arr.shape == (3, 3, 1)
    assert arr[0, :, 0].tolist() == expected


# transparency


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_alpha_shape_on_white_background_by_default(tmp_path: Path, shape: str) -> None:
    _save(SHAPES[shape](), tmp_path / "mine" / "a.png")
    images = image_folder_flat(str(tmp_path / "mine"), image_size=SIZE, channels=1)
    px, mask = images[0, 0], _square_mask()
    assert torch.all(px[mask] == -1.0)  # the square: its RGB, black
    assert torch.all(px[~mask] == 1.0)  # the transparent ground: white


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_alpha_shape_on_black_background_is_all_dark(tmp_path: Path, shape: str) -> None:
    _save(SHAPES[shape](), tmp_path / "mine" / "a.png")
    images = image_folder_flat(
        str(tmp_path / "mine"), image_size=SIZE, channels=3, alpha_background="black"
    )
    assert images.shape == (1, 3, SIZE, SIZE)
    assert torch.all(images == -1.0)


def test_alpha_gray_level_background(tmp_path: Path) -> None:
    _save(_rgba_shape(), tmp_path / "mine" / "a.png")
    images = image_folder_flat(
        str(tmp_path / "mine"), image_size=SIZE, channels=1, alpha_background=64
    )
    px, mask = images[0, 0], _square_mask()
    assert torch.all(px[mask] == -1.0)
    assert torch.allclose(px[~mask], torch.tensor(64 / 127.5 - 1))


def test_half_transparent_pixel_blends_with_background(tmp_path: Path) -> None:
    Image.new("RGBA", (SIZE, SIZE), (0, 0, 0, 128)).save(tmp_path / "half.png")
    arr = decode(tmp_path / "half.png", SIZE, 1, "half.png")
    # 128/255 black over white: 255 * (1 - 128/255) = 127
    assert np.all(np.abs(arr.astype(int) - 127) <= 1)


def test_omniglot_folder_composites_then_inverts(tmp_path: Path) -> None:
    char = tmp_path / "images_background" / "Alpha" / "character01"
    for i in range(2):
        _save(_rgba_shape(), char / f"{i}.png")
    classes = omniglot(str(tmp_path), image_size=SIZE)
    px, mask = classes["Alpha/character01"][0, 0], _square_mask()
    assert torch.all(px[mask] == 1.0)  # the black stroke, inverted: +1
    assert torch.all(px[~mask] == -1.0)  # the white ground, inverted: -1


def test_target_path_class_folders_use_background(tmp_path: Path) -> None:
    for cls in ("crack", "dent"):
        for i in range(3):
            _save(_la_shape(), tmp_path / "mine" / cls / f"{i}.png")
    targets = path_targets(
        str(tmp_path / "mine"), class_name=None, shots=2, seed=0, image_size=SIZE, channels=1,
        alpha_background=255,
    )  # fmt: skip
    assert [t.class_name for t in targets] == ["crack", "dent"]
    for target in targets:
        images = torch.cat([target.shots, target.heldout])
        assert images.shape == (3, 1, SIZE, SIZE)
        assert torch.all(images[:, 0, ~_square_mask()] == 1.0)
        assert torch.all(images[:, 0, _square_mask()] == -1.0)


# dataset.alpha_background values


@pytest.mark.parametrize(
    ("value", "level"), [("white", 255), ("black", 0), ("White", 255), (0, 0), (128, 128),
                         ("200", 200), (255, 255)]
)  # fmt: skip
def test_alpha_background_values(value: str | int, level: int) -> None:
    assert alpha_level(value) == level


@pytest.mark.parametrize("value", ["purple", "", 256, -1, 1.5, True, None])
def test_bad_alpha_background_is_a_user_error(value: object) -> None:
    with pytest.raises(UserError) as err:
        alpha_level(value)
    message = str(err.value)
    assert "\n" not in message
    assert "dataset.alpha_background" in message
    assert "white, black or a gray level 0-255" in message


def test_bad_alpha_background_for_target_path_via_cli(refused: Runner, tmp_path: Path) -> None:
    for i in range(6):
        _save(_rgba_shape(), tmp_path / "mine" / f"{i}.png")
    proc = refused("train", f"target.path={tmp_path / 'mine'}", "dataset.alpha_background=purple")
    assert_one_line_error(
        proc, "dataset.alpha_background='purple'", "white, black or a gray level 0-255"
    )


def test_bad_alpha_background_for_imagefolder_via_cli(refused: Runner, tmp_path: Path) -> None:
    for cls in ("a", "b"):
        _save(_rgba_shape(), tmp_path / "data" / cls / "0.png")
    proc = refused(
        "train", "dataset=imagefolder", f"dataset.root={tmp_path / 'data'}",
        "dataset.alpha_background=300",
    )  # fmt: skip
    assert_one_line_error(proc, "dataset.alpha_background=300", "gray level 0-255")
