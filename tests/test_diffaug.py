"""DiffAugment: each op's exact effect, its gradients, seeding, and vmap/grad equivalence."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf
from torch.func import grad, vmap

from metaaug.augment.diffaug import DiffAugment
from metaaug.errors import UserError

CONF = Path(__file__).resolve().parents[1] / "src" / "metaaug" / "conf" / "augment"


def images(n: int = 4, c: int = 3, size: int = 16, seed: int = 0) -> torch.Tensor:
    return torch.rand(n, c, size, size, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def color_params(
    n: int, brightness: float = 0.0, saturation: float = 1.0, contrast: float = 1.0
) -> dict[str, torch.Tensor]:
    return {
        "brightness": torch.full((n,), brightness),
        "saturation": torch.full((n,), saturation),
        "contrast": torch.full((n,), contrast),
    }


def shift(dy: int, dx: int, n: int = 1) -> dict[str, torch.Tensor]:
    return {"shift_y": torch.full((n,), dy), "shift_x": torch.full((n,), dx)}


@pytest.mark.parametrize("policy", ["", "none", " none "])
def test_disabled_policy_is_the_identity(policy: str) -> None:
    aug, x = DiffAugment(policy), images()
    assert aug.sample_params(4, gen(), 16) == {}
    assert torch.equal(aug.apply(x, {}), x)
    assert torch.equal(aug(x, gen()), x)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("policy", ["color", "translation", "cutout", "color,translation,cutout"])
def test_each_op_changes_images_and_keeps_shape_and_dtype(policy: str, dtype: torch.dtype) -> None:
    x = images(n=8).to(dtype)
    out = DiffAugment(policy)(x, gen(1))
    assert out.shape == x.shape and out.dtype == dtype
    assert (out - x).abs().amax(dim=(1, 2, 3)).gt(1e-3).sum() >= 4  # most images change


def test_translation_moves_a_bright_pixel_by_the_shift_and_fills_with_background() -> None:
    x = torch.full((1, 1, 16, 16), -1.0)
    x[0, 0, 5, 6] = 1.0
    out = DiffAugment("translation").apply(x, shift(2, -3))
    assert out[0, 0, 7, 3] == 1.0
    assert (out == 1.0).sum() == 1 and (out == -1.0).sum() == 16 * 16 - 1

    x = images(n=1, c=2)
    out = DiffAugment("translation").apply(x, shift(2, -3))
    assert torch.equal(out[:, :, 2:, :13], x[:, :, :14, 3:])
    assert (out[:, :, :2] == -1).all() and (out[:, :, :, 13:] == -1).all()


@pytest.mark.parametrize(("top", "left"), [(3, 5), (-4, 12)])  # inside; overhanging two borders
def test_cutout_sets_exactly_the_square_to_background(top: int, left: int) -> None:
    x, size = images(n=1), 8  # cutout_ratio 0.5 of 16
    params = {"cutout_top": torch.tensor([top]), "cutout_left": torch.tensor([left])}
    out = DiffAugment("cutout").apply(x, params)
    hole = torch.zeros(16, 16, dtype=torch.bool)
    hole[max(top, 0) : top + size, max(left, 0) : left + size] = True
    assert (out[..., hole] == -1).all()
    assert torch.equal(out[..., ~hole], x[..., ~hole])
    assert hole.sum() == (8 if top >= 0 else 4) * (8 if left + size <= 16 else 4)


def test_brightness_shifts_every_pixel_and_is_not_clamped() -> None:
    x = images()
    out = DiffAugment("color").apply(x, color_params(4, brightness=0.3))
    torch.testing.assert_close(out, x + 0.3, rtol=0, atol=1e-6)
    assert out.max() > 1.0  # the paper does not clamp; neither do we


def test_saturation_and_contrast_scale_deviations_from_the_means() -> None:
    x = images()
    grey = DiffAugment("color").apply(x, color_params(4, saturation=0.0))
    torch.testing.assert_close(grey, x.mean(dim=1, keepdim=True).expand_as(x))
    flat = DiffAugment("color").apply(x, color_params(4, contrast=0.5))
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    torch.testing.assert_close(flat, mean + 0.5 * (x - mean))
    one = images(c=1)  # saturation is the identity on 1 channel
    torch.testing.assert_close(
        DiffAugment("color").apply(one, color_params(4, saturation=1.7)), one
    )


def test_sampled_params_cover_the_official_ranges() -> None:
    p = DiffAugment().sample_params(4000, gen(), image_size=32)
    assert p["brightness"].min() >= -0.5 and p["brightness"].max() <= 0.5
    assert p["saturation"].min() >= 0 and p["saturation"].max() <= 2
    assert p["contrast"].min() >= 0.5 and p["contrast"].max() <= 1.5
    for key in ("shift_y", "shift_x"):  # 0.125 * 32 = 4 pixels each way
        assert set(p[key].tolist()) == set(range(-4, 5))
    for key in ("cutout_top", "cutout_left"):  # a 16 square centred on any pixel
        assert p[key].min() == -8 and p[key].max() == 24


def test_gradient_of_translation_is_one_at_pixels_that_stay_inside() -> None:
    x = images(n=1, c=1, size=8).requires_grad_()
    (g,) = torch.autograd.grad(DiffAugment("translation").apply(x, shift(2, -3)).sum(), x)
    expected = torch.zeros(8, 8)
    expected[:6, 3:] = 1.0  # rows 6, 7 fall off the bottom, columns 0..2 off the left
    assert torch.equal(g[0, 0], expected)


def test_gradient_flows_through_the_full_policy_and_not_through_the_hole() -> None:
    aug, x = DiffAugment(), images().requires_grad_()
    params = aug.sample_params(4, gen(), 16)
    (g,) = torch.autograd.grad((aug.apply(x, params) ** 2).sum(), x)
    assert g.abs().sum() > 0
    cut = DiffAugment("cutout")
    hole = {"cutout_top": torch.tensor([0] * 4), "cutout_left": torch.tensor([0] * 4)}
    (g,) = torch.autograd.grad(cut.apply(x, hole).sum(), x)
    assert (g[..., :8, :8] == 0).all() and (g[..., 8:, :] == 1).all()


def test_same_seed_same_output_different_seed_different_output() -> None:
    aug, x = DiffAugment(), images()
    assert torch.equal(aug(x, gen(7)), aug(x, gen(7)))
    assert not torch.equal(aug(x, gen(7)), aug(x, gen(8)))


def test_vmap_over_tasks_equals_the_loop_and_composes_with_grad() -> None:
    aug, rng = DiffAugment(), gen(3)
    x = torch.stack([images(n=5, seed=s) for s in range(3)])  # [tasks, N, C, H, W]
    per_task = [aug.sample_params(5, rng, 16) for _ in range(3)]
    stacked = {k: torch.stack([p[k] for p in per_task]) for k in per_task[0]}
    loop = torch.stack([aug.apply(x[t], per_task[t]) for t in range(3)])
    torch.testing.assert_close(vmap(aug.apply)(x, stacked), loop, rtol=0, atol=1e-6)

    def loss(xt: torch.Tensor, pt: dict[str, torch.Tensor]) -> torch.Tensor:
        return (aug.apply(xt, pt) ** 2).sum()

    g_loop = torch.stack([grad(loss)(x[t], per_task[t]) for t in range(3)])
    x0 = x[0].clone().requires_grad_()
    ref = torch.autograd.grad(loss(x0, per_task[0]), x0)[0]
    torch.testing.assert_close(g_loop[0], ref)
    torch.testing.assert_close(vmap(grad(loss))(x, stacked), g_loop, rtol=0, atol=1e-6)


def test_yaml_instantiates_a_diffaugment() -> None:
    node = OmegaConf.load(CONF / "diffaug.yaml")
    assert node.name == "diffaug"
    aug = instantiate(node.transform)
    assert isinstance(aug, DiffAugment) and aug.differentiable
    assert aug.ops == ("color", "translation", "cutout")
    assert (aug.translation_ratio, aug.cutout_ratio, aug.brightness) == (0.125, 0.5, 0.5)


def test_bad_policy_and_missing_size_are_named() -> None:
    with pytest.raises(UserError, match=r"unknown op 'colour'.*color, translation, cutout"):
        DiffAugment("colour,cutout")
    with pytest.raises(UserError, match=r"cutout_ratio=1\.5"):
        DiffAugment(cutout_ratio=1.5)
    with pytest.raises(ValueError, match="image_size"):
        DiffAugment("translation").sample_params(2, gen())
