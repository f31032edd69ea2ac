"""What a generator is conditioned on besides z: one small protocol, one object per kind.

A generator class names its kind in a `conditioning` attribute (`CLASS`, `IMAGE`; absent:
`NONE`), and every loop asks that object instead of comparing names:
- the inner loop (`metaaug.meta.functional`) takes each step's condition from `for_step` and
  draws partner images when `pairs` is set; both networks see the same condition: G(z, c)
  and D(x, c);
- sampling one class (`metaaug.meta.adapt.sample`, the fewshot gan arm) takes it from
  `for_sampling`;
- the checks made before any work ask `min_shots`, `multi_class` and `needs_shots`.
- train's report asks `one_shot_each` (is image i drawn from shot i mod k alone?) before it
  measures `shot_spread`.

The kinds:
- `NONE`: G(z), D(x).
- `CLASS` (class-conditional pair, N-way tasks): c is the slot label (0..N-1) of each real
  image, and the fakes of a step carry the labels of its reals, so every slot is trained
  equally. One class is adapted and sampled in slot 0.
- `IMAGE` (DAGAN): c is another real image of the same class, a partner drawn per step (never
  the image itself), so adapting needs two shots and a task holds one class. D judges the real
  pair (x, c) against the fake pair (G(z, c), c); sampling transforms the class's shots in turn
  (image i from shot i mod k).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from metaaug.errors import UserError


@dataclass(frozen=True)
class Conditioning:
    """The unconditioned kind; `ClassConditioning` and `ImageConditioning` override it."""

    name: str = "none"
    pairs: bool = False  # each step pairs a real image with another of its class
    multi_class: bool = True  # a task may hold several classes
    needs_shots: bool = False  # sampling transforms the class's shots
    own_class: bool = False  # a fake is of its condition's class, even in a pooled batch
    one_shot_each: bool = False  # sampled image i is drawn from shot i mod k alone

    def picks(self, shape: tuple[int, ...], n: int, groups: int, rng: torch.Generator) -> Tensor:
        """The images each of `n` real images (`groups` classes in equal consecutive blocks)
        is conditioned with, per step of `shape`: indices [*shape, n, ...] (drawn up front,
        so that a task stays a pure function of its inputs); none for this kind."""
        return torch.zeros(*shape, 0, dtype=torch.long)

    def min_shots(self, adapting: bool) -> int:
        """Shots of a class needed to adapt to it (`adapting`) or to sample from it."""
        return 2 if self.pairs and adapting else 1

    def for_step(self, images: Tensor, labels: Tensor | None, pick: Tensor) -> Tensor | None:
        """The condition of a training step on `images` with slot `labels` (None: all slot 0)
        and partner indices `pick`."""
        return None

    def for_sampling(
        self, index: Tensor, shots: Tensor | None, device: torch.device
    ) -> Tensor | None:
        """The condition of the images numbered `index` of one class with these `shots`."""
        return None


@dataclass(frozen=True)
class ClassConditioning(Conditioning):
    name: str = "class"

    def for_step(self, images: Tensor, labels: Tensor | None, pick: Tensor) -> Tensor | None:
        if labels is None:
            return torch.zeros(images.shape[0], dtype=torch.long, device=images.device)
        return labels

    def for_sampling(self, index: Tensor, shots: Tensor | None, device: torch.device) -> Tensor:
        return torch.zeros(index.shape[0], dtype=torch.long, device=device)


@dataclass(frozen=True)
class ImageConditioning(Conditioning):
    name: str = "image"
    pairs: bool = True
    multi_class: bool = False
    needs_shots: bool = True
    own_class: bool = True
    one_shot_each: bool = True

    def picks(self, shape: tuple[int, ...], n: int, groups: int, rng: torch.Generator) -> Tensor:
        return partners(shape, n, groups, rng)

    def for_step(self, images: Tensor, labels: Tensor | None, pick: Tensor) -> Tensor:
        return images[pick]

    def for_sampling(self, index: Tensor, shots: Tensor | None, device: torch.device) -> Tensor:
        if shots is None or shots.shape[0] == 0:
            raise ValueError("an image-conditioned generator needs the class's shots to sample")
        return shots[index.to(shots.device) % shots.shape[0]].to(device)


@dataclass(frozen=True)
class SetConditioning(ImageConditioning):
    """c is the set of all the class's images in the step (its shots when sampling), one set
    per image [n, k, C, H, W]: the generator fuses them (`metaaug.models.fusion`)."""

    name: str = "set"
    pairs: bool = False
    one_shot_each: bool = False

    def picks(self, shape: tuple[int, ...], n: int, groups: int, rng: torch.Generator) -> Tensor:
        size = n // groups  # every image of its class block, the same for each step
        block = torch.arange(n) // size * size
        members = block.unsqueeze(1) + torch.arange(size)  # [n, size]
        return members.expand(*shape, n, size).clone()

    def for_sampling(self, index: Tensor, shots: Tensor | None, device: torch.device) -> Tensor:
        if shots is None or shots.shape[0] == 0:
            raise ValueError("a set-conditioned generator needs the class's shots to sample")
        return shots.to(device).unsqueeze(0).expand(index.shape[0], *shots.shape)


def partners(shape: tuple[int, ...], n: int, groups: int, rng: torch.Generator) -> Tensor:
    """Random partner indices [*shape, n]: `n` images in `groups` equal consecutive blocks (one
    class each), each paired with another image of its own block by a random non-zero shift."""
    size = n // groups
    if size < 2 or size * groups != n:
        raise UserError(
            f"an image-conditioned GAN (gan=dagan) pairs each image with another of its class, "
            f"but got {n / groups:g} per class; use at least 2 (meta_algo.support, "
            f"meta_algo.query and target.shots), or finetune.steps=0 to skip fine-tuning"
        )
    shift = torch.randint(1, size, (*shape, groups, 1), generator=rng)
    within = (torch.arange(size) + shift) % size
    return (within + torch.arange(groups).unsqueeze(1) * size).flatten(-2)


NONE, CLASS, IMAGE, SET = (
    Conditioning(),
    ClassConditioning(),
    ImageConditioning(),
    SetConditioning(),
)


def conditioning(generator: nn.Module) -> Conditioning:
    """The kind a generator declares (`NONE` when it declares none)."""
    return getattr(generator, "conditioning", NONE)
