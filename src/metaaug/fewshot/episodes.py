"""N-way K-shot episodes from held-out classes, identical for every augmentation arm.

A class may have a fixed support set (`fixed_support`: the rows of the shots a `metaaug train`
run generated synthetic images from); its queries are then drawn from its other images, so
no image the generator saw is ever a query.

Episode i is drawn from its own generator, seeded by (seed, i): it does not depend on how many
random numbers earlier episodes, arms or learners consumed, so every arm and learner sees the
very same support and query images, which is what makes the comparison paired.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from metaaug.errors import BadValue


@dataclass(frozen=True, eq=False)
class Episode:
    """One episode: `ways` classes, labelled 0..ways-1 in the order of `class_names`."""

    support: Tensor  # [ways * shots, C, H, W], class by class
    support_labels: Tensor  # [ways * shots] int64
    query: Tensor  # [ways * queries, C, H, W]
    query_labels: Tensor  # [ways * queries] int64
    class_names: tuple[str, ...]

    @property
    def ways(self) -> int:
        return len(self.class_names)


class EpisodeSampler:
    """Episodes of `ways` classes among `names`, `shots` support and `queries` query images each."""

    def __init__(
        self,
        classes: Mapping[str, Tensor],
        names: Sequence[str],
        ways: int,
        shots: int,
        queries: int,
        seed: int,
        split: str = "meta-test",
        fixed_support: Mapping[str, Sequence[int]] | None = None,
    ) -> None:
        if ways < 2:
            raise BadValue(f"{{ways}}={ways}: an episode needs at least 2 classes")
        if shots < 1 or queries < 1:
            raise BadValue(f"{{shots}}={shots}, {{queries}}={queries}: both must be at least 1")
        if ways > len(names):
            raise BadValue(
                f"{{ways}}={ways} but the {split} split has {len(names)} classes; lower "
                "{ways} or change {test_fraction}"
            )
        smallest = min(names, key=lambda n: classes[n].shape[0])
        count = classes[smallest].shape[0]
        if shots + queries > count:
            raise BadValue(
                f"class '{smallest}' has {count} images but an episode takes shots + queries = "
                f"{shots} + {queries} from each class; lower {{shots}} or {{queries}}"
            )
        for name, rows in (fixed_support or {}).items():
            if len(rows) != shots:
                raise BadValue(
                    f"the synthetic images of '{name}' were generated from {len(rows)} shots; "
                    f"set {{shots}}={len(rows)} so that those shots are its support"
                )
            if any(not 0 <= row < classes[name].shape[0] for row in rows):
                raise BadValue(
                    f"the synthetic images of '{name}' name shot rows {list(rows)} outside its "
                    f"{classes[name].shape[0]} images (a damaged manifest.json, or another "
                    "dataset); generate them again with `metaaug train`"
                )
        self.classes = classes
        self.names = tuple(names)
        self.ways, self.shots, self.queries, self.seed = ways, shots, queries, seed
        self.fixed_support = {k: list(v) for k, v in (fixed_support or {}).items()}

    def episode(self, index: int) -> Episode:
        gen = torch.Generator().manual_seed(self.seed * 1_000_003 + index)
        picks = torch.randperm(len(self.names), generator=gen)[: self.ways].tolist()
        support, query = [], []
        for name in (self.names[i] for i in picks):
            images = self.classes[name]
            rows = torch.randperm(images.shape[0], generator=gen)
            if name in self.fixed_support:  # its support is fixed, its queries are the others
                fixed = torch.tensor(self.fixed_support[name])
                rows = torch.cat([fixed, rows[~torch.isin(rows, fixed)]])
            rows = rows[: self.shots + self.queries]
            support.append(images[rows[: self.shots]])
            query.append(images[rows[self.shots :]])
        labels = torch.arange(self.ways)
        return Episode(
            torch.cat(support),
            labels.repeat_interleave(self.shots),
            torch.cat(query),
            labels.repeat_interleave(self.queries),
            tuple(self.names[i] for i in picks),
        )
