"""DiffAugment: differentiable color, translation and cutout for data-efficient GAN training.

Description:
    The same random augmentation is applied to real and generated images, in the D step and
    in the G step; it is differentiable, so G's gradients flow through it. With ~100 images
    this keeps D from memorizing the training set.

    Randomness lives outside the transform: `sample_params` draws every random number from a
    generator, and `apply` is a pure, differentiable function of (images, params). Tasks can
    then be batched with `torch.func.vmap` (params stacked per task) and give the same result
    as a loop over tasks for the same draws.

Ranges: images are in [-1, 1] with background -1. The official code also feeds [-1, 1]
    images (StyleGAN2's `drange_net`, BigGAN's normalization), so its constants are kept
    as they are: brightness shift U(-0.5, 0.5) in [-1, 1] units (U(-0.25, 0.25) on a [0, 1]
    scale); saturation and contrast factors are scale-free. Pixels shifted in and the cutout
    square take the background value -1 where the official code puts 0 (mid-grey here): a
    grey patch on Omniglot's black background would be an artefact D could key on. Nothing is
    clamped, as in the paper: D sees the shifted values, and G's gradient is not cut off.

References:
    Zhao, Liu, Lin, Zhu, Han. "Differentiable Augmentation for Data-Efficient GAN Training",
    NeurIPS 2020, arXiv:2006.10738 (policies as in the official code,
    github.com/mit-han-lab/data-efficient-gans).

Example:
    >>> aug = DiffAugment("color,translation,cutout")
    >>> params = aug.sample_params(8, torch.Generator().manual_seed(0), image_size=32)
    >>> y = aug.apply(torch.zeros(8, 1, 32, 32), params)  # deterministic given params
"""

from __future__ import annotations

import torch
from torch import Tensor

from metaaug.errors import BadValue

BACKGROUND = -1.0
# op -> the params it draws, in drawing order
OPS: dict[str, tuple[str, ...]] = {
    "color": ("brightness", "saturation", "contrast"),
    "translation": ("shift_y", "shift_x"),
    "cutout": ("cutout_top", "cutout_left"),
}


def _per_image(v: Tensor, x: Tensor) -> Tensor:
    return v.to(device=x.device, dtype=x.dtype).reshape(-1, 1, 1, 1)


def _color(x: Tensor, brightness: Tensor, saturation: Tensor, contrast: Tensor) -> Tensor:
    x = x + _per_image(brightness, x)
    # saturation: scale each pixel's deviation from its channel mean (a no-op for 1 channel)
    grey = x.mean(dim=1, keepdim=True)
    x = (x - grey) * _per_image(saturation, x) + grey
    # contrast: scale the deviation from the image's mean
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - mean) * _per_image(contrast, x) + mean


def _translate(x: Tensor, shift_y: Tensor, shift_x: Tensor) -> Tensor:
    """Move image i by (shift_y[i], shift_x[i]) pixels (down, right); fill with background."""
    n, c, h, w = x.shape
    # output pixel r reads source pixel r - shift; gather (not roll) because shifts differ per
    # image and must stay tensors under vmap
    src_y = torch.arange(h, device=x.device) - shift_y.to(x.device).reshape(-1, 1)  # [n, h]
    src_x = torch.arange(w, device=x.device) - shift_x.to(x.device).reshape(-1, 1)  # [n, w]
    rows = src_y.clamp(0, h - 1)[:, None, :, None].expand(n, c, h, w)
    cols = src_x.clamp(0, w - 1)[:, None, None, :].expand(n, c, h, w)
    out = x.gather(2, rows).gather(3, cols)
    in_y, in_x = (src_y >= 0) & (src_y < h), (src_x >= 0) & (src_x < w)
    inside = in_y[:, None, :, None] & in_x[:, None, None, :]
    return torch.where(inside, out, BACKGROUND)


def _cutout(x: Tensor, top: Tensor, left: Tensor, size: int) -> Tensor:
    """Set a size x size square with corner (top, left) to background; it may overhang."""
    _, _, h, w = x.shape
    top, left = top.to(x.device).reshape(-1, 1), left.to(x.device).reshape(-1, 1)
    ys, xs = torch.arange(h, device=x.device), torch.arange(w, device=x.device)
    in_y = (ys >= top) & (ys < top + size)  # [n, h]
    in_x = (xs >= left) & (xs < left + size)  # [n, w]
    hole = in_y[:, None, :, None] & in_x[:, None, None, :]
    return torch.where(hole, BACKGROUND, x)


class DiffAugment:
    """Differentiable augmentation of real and generated images [N, C, H, W] in [-1, 1].

    Arguments:
        policy: comma-separated ops, applied in the order given: `color` (brightness,
            saturation, contrast), `translation`, `cutout`. "" or "none": the identity.
        translation_ratio: maximum shift as a fraction of the side (integer pixel shifts).
        cutout_ratio: side of the cut-out square as a fraction of the image side.
        brightness: half-width of the brightness shift in [-1, 1] units; 0.5 is the official
            code's value on its [-1, 1] images.

    `apply` is pure (no randomness, no in-place ops) and works under `torch.func.vmap` and
    `torch.func.grad`; `__call__(x, rng)` is the plain `(images, rng) -> images` transform.
    """

    differentiable = True  # apply to real AND fake images, in the D and the G step

    def __init__(
        self,
        policy: str = "color,translation,cutout",
        translation_ratio: float = 0.125,
        cutout_ratio: float = 0.5,
        brightness: float = 0.5,
    ) -> None:
        ops = [p.strip() for p in policy.split(",") if p.strip()]
        ops = [] if ops == ["none"] else ops
        for op in ops:
            if op not in OPS:
                raise BadValue(
                    f"{{policy}} has unknown op {op!r}; "
                    f"use a comma-separated subset of {', '.join(OPS)}, or 'none'"
                )
        if len(set(ops)) != len(ops):
            raise BadValue(f"{{policy}}={policy!r} repeats an op; name each once")
        for name, value in (
            ("translation_ratio", translation_ratio),
            ("cutout_ratio", cutout_ratio),
        ):
            if not 0 <= value <= 1:
                raise BadValue(f"{{{name}}}={value} must lie in [0, 1]")
        self.ops = tuple(ops)
        self.translation_ratio, self.cutout_ratio = translation_ratio, cutout_ratio
        self.brightness = brightness

    def __repr__(self) -> str:
        return (
            f"DiffAugment(policy={','.join(self.ops) or 'none'!r}, translation_ratio="
            f"{self.translation_ratio}, cutout_ratio={self.cutout_ratio}, "
            f"brightness={self.brightness})"
        )

    def cutout_size(self, image_size: int) -> int:
        return int(image_size * self.cutout_ratio + 0.5)

    def sample_params(
        self, n: int, generator: torch.Generator, image_size: int | None = None
    ) -> dict[str, Tensor]:
        """Every random draw for n square images of side `image_size`, as [n] tensors.

        Draws happen in policy order on the generator's device, so one seed gives one set of
        params whatever later consumes them.
        """
        if image_size is None and {"translation", "cutout"} & set(self.ops):
            raise ValueError(f"{self!r} needs image_size to draw pixel shifts and positions")
        dev = generator.device

        def uniform(lo: float, hi: float) -> Tensor:
            return lo + (hi - lo) * torch.rand(n, generator=generator, device=dev)

        def integers(lo: int, hi: int) -> Tensor:  # uniform on lo..hi inclusive
            return torch.randint(lo, hi + 1, (n,), generator=generator, device=dev)

        params: dict[str, Tensor] = {}
        for op in self.ops:
            if op == "color":
                params["brightness"] = uniform(-self.brightness, self.brightness)
                params["saturation"] = uniform(0.0, 2.0)
                params["contrast"] = uniform(0.5, 1.5)
            elif op == "translation":
                s = int(image_size * self.translation_ratio + 0.5)  # the official rounding
                params["shift_y"], params["shift_x"] = integers(-s, s), integers(-s, s)
            else:
                # the official code centres the square on a uniform pixel, so it may overhang
                # by up to half its side on each border
                k = self.cutout_size(image_size)
                lo, hi = -(k // 2), image_size - k // 2 - k % 2
                params["cutout_top"], params["cutout_left"] = integers(lo, hi), integers(lo, hi)
        return params

    def apply(self, x: Tensor, params: dict[str, Tensor]) -> Tensor:
        """The ops of the policy on x [N, C, H, W] with the drawn params; x itself if none."""
        for op in self.ops:
            if op == "color":
                x = _color(x, params["brightness"], params["saturation"], params["contrast"])
            elif op == "translation":
                x = _translate(x, params["shift_y"], params["shift_x"])
            else:
                size = self.cutout_size(x.shape[-1])
                x = _cutout(x, params["cutout_top"], params["cutout_left"], size)
        return x

    def __call__(self, x: Tensor, rng: torch.Generator) -> Tensor:
        return self.apply(x, self.sample_params(x.shape[0], rng, x.shape[-1]))
