"""What a generator is conditioned on besides z: one small protocol, one object per kind.

A generator class names its kind in a `conditioning` attribute (`CLASS`, `IMAGE`; absent:
`NONE`), and every loop asks that object instead of comparing names:
- the inner loop (`metaaug.meta.functional`) takes each step's condition from `for_step` and
  draws partner images when `pairs` is set; both networks see the same condition: G(z, c)
  and D(x, c);
- sampling one class (`metaaug.meta.adapt.sample`, the fewshot gan arm) takes it from
  `for_sampling`;
- the checks made before any work ask `min_shots`, `multi_class` and `needs_shots`.

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


@dataclass(frozen=True)
class Conditioning:
    """The unconditioned kind; `ClassConditioning` and `ImageConditioning` override it."""

    name: str = "none"
    pairs: bool = False  # each step pairs a real image with another of its class
    multi_class: bool = True  # a task may hold several classes
    needs_shots: bool = False  # sampling transforms the class's shots

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

    def for_step(self, images: Tensor, labels: Tensor | None, pick: Tensor) -> Tensor:
        return images[pick]

    def for_sampling(self, index: Tensor, shots: Tensor | None, device: torch.device) -> Tensor:
        if shots is None or shots.shape[0] == 0:
            raise ValueError("an image-conditioned generator needs the class's shots to sample")
        return shots[index.to(shots.device) % shots.shape[0]].to(device)


NONE, CLASS, IMAGE = Conditioning(), ClassConditioning(), ImageConditioning()


def conditioning(generator: nn.Module) -> Conditioning:
    """The kind a generator declares (`NONE` when it declares none)."""
    return getattr(generator, "conditioning", NONE)
