"""Episodic few-shot tasks for meta-learning: `ways` classes per task (1 for an unconditional
GAN, N for a class-conditional one), disjoint support and query.

The sampler is the project's own (torchmeta no longer imports with current torch); it keeps
its own generator so that task order is reproducible regardless of other random draws.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch

from metaaug.errors import BadValue, UserError


@dataclass(frozen=True, eq=False)
class Task:
    """A meta-batch of B tasks of `ways` classes each.

    Task b holds the classes `class_names[b * ways : (b + 1) * ways]`; its images are ordered
    class by class, and each image's label is its class's slot in the task (0..ways-1): the
    labels a class-conditional GAN is trained with. None labels mean every image is slot 0.
    """

    support: torch.Tensor  # [B, ways * S, C, H, W]
    query: torch.Tensor  # [B, ways * Q, C, H, W], Q may be 0
    class_names: tuple[str, ...]
    support_labels: torch.Tensor | None = None  # [B, ways * S] int64
    query_labels: torch.Tensor | None = None  # [B, ways * Q] int64

    def labels(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(support, query) slot labels, zeros when the task has one class."""

        def or_zeros(labels: torch.Tensor | None, images: torch.Tensor) -> torch.Tensor:
            if labels is not None:
                return labels
            return torch.zeros(images.shape[:2], dtype=torch.long, device=images.device)

        return or_zeros(self.support_labels, self.support), or_zeros(self.query_labels, self.query)


class TaskSampler:
    """Draws meta-batches of tasks from the classes `names` (e.g. the meta-train split)."""

    def __init__(
        self,
        classes: Mapping[str, torch.Tensor],
        names: Sequence[str],
        support: int,
        query: int,
        seed: int,
        ways: int = 1,
    ) -> None:
        if support < 1:
            raise BadValue(
                f"{{support}}={support}: a task needs at least 1 image; set it to e.g. 4"
            )
        if query < 0:
            raise BadValue(f"{{query}}={query} must be 0 or more; set it to e.g. 0 (Reptile) or 4")
        if not names:
            raise UserError("no classes to sample tasks from; the meta-train split is empty")
        if not 1 <= ways <= len(names):
            raise BadValue(
                f"{{ways}}={ways}: a task needs between 1 and {len(names)} classes (the "
                f"meta-train split); set {{ways}} to at most {len(names)}"
            )
        for name in names:
            if name not in classes:
                raise UserError(f"task class '{name}' is not in the dataset; check the class split")
            count = classes[name].shape[0]
            if count < support + query:
                raise BadValue(
                    f"class '{name}' has {count} images but a task needs support + query = "
                    f"{support} + {query} = {support + query}; lower {{support}}/{{query}} or "
                    "remove the class"
                )
        self.classes = classes
        self.names = tuple(names)
        self.support = support
        self.query = query
        self.ways = ways
        self.generator = torch.Generator().manual_seed(seed)

    def sample(self, batch_size: int) -> Task:
        """`batch_size` tasks; all classes of a meta-batch are distinct when there are enough,
        and the classes of one task always are."""
        if batch_size < 1:
            raise BadValue(
                f"{{meta_batch_size}}={batch_size} must be at least 1; set it to e.g. 1 or 4"
            )
        n, ways, gen = len(self.names), self.ways, self.generator
        if batch_size * ways <= n:
            picks = torch.randperm(n, generator=gen)[: batch_size * ways].view(batch_size, ways)
        elif ways == 1:
            picks = torch.randint(n, (batch_size, 1), generator=gen)
        else:
            picks = torch.stack(
                [torch.randperm(n, generator=gen)[:ways] for _ in range(batch_size)]
            )
        supports, queries, names = [], [], []
        for task in picks.tolist():
            s, q = [], []
            for i in task:
                images = self.classes[self.names[i]]
                rows = torch.randperm(images.shape[0], generator=gen)
                rows = rows[: self.support + self.query].to(images.device)
                s.append(images[rows[: self.support]])
                q.append(images[rows[self.support :]])
                names.append(self.names[i])
            supports.append(torch.cat(s))
            queries.append(torch.cat(q))
        slots = torch.arange(ways)
        return Task(
            torch.stack(supports),
            torch.stack(queries),
            tuple(names),
            slots.repeat_interleave(self.support).expand(batch_size, -1),
            slots.repeat_interleave(self.query).expand(batch_size, -1),
        )
