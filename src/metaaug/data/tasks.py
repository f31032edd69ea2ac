"""Episodic few-shot tasks for meta-learning: one class per task, disjoint support and query.

The sampler is the project's own (torchmeta no longer imports with current torch); it keeps
its own generator so that task order is reproducible regardless of other random draws.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch

from metaaug.errors import UserError


@dataclass(frozen=True, eq=False)
class Task:
    """A meta-batch of B tasks; task b is class `class_names[b]`."""

    support: torch.Tensor  # [B, S, C, H, W]
    query: torch.Tensor  # [B, Q, C, H, W], Q may be 0
    class_names: tuple[str, ...]


class TaskSampler:
    """Draws meta-batches of tasks from the classes `names` (e.g. the meta-train split)."""

    def __init__(
        self,
        classes: Mapping[str, torch.Tensor],
        names: Sequence[str],
        support: int,
        query: int,
        seed: int,
    ) -> None:
        if support < 1:
            raise UserError(
                f"meta_algo.support={support}: a task needs at least 1 image; set it to e.g. 4"
            )
        if query < 0:
            raise UserError(
                f"meta_algo.query={query} must be 0 or more; set it to e.g. 0 (Reptile) or 4"
            )
        if not names:
            raise UserError("no classes to sample tasks from; the meta-train split is empty")
        for name in names:
            if name not in classes:
                raise UserError(f"task class '{name}' is not in the dataset; check the class split")
            count = classes[name].shape[0]
            if count < support + query:
                raise UserError(
                    f"class '{name}' has {count} images but a task needs support + query = "
                    f"{support} + {query} = {support + query}; lower meta_algo.support/query or "
                    "remove the class"
                )
        self.classes = classes
        self.names = tuple(names)
        self.support = support
        self.query = query
        self.generator = torch.Generator().manual_seed(seed)

    def sample(self, batch_size: int) -> Task:
        """`batch_size` tasks of distinct classes (repeats only when there are too few)."""
        if batch_size < 1:
            raise UserError(
                f"meta_algo.meta_batch_size={batch_size} must be at least 1; set it to e.g. 1 or 4"
            )
        n = len(self.names)
        if batch_size <= n:
            picks = torch.randperm(n, generator=self.generator)[:batch_size]
        else:
            picks = torch.randint(n, (batch_size,), generator=self.generator)
        supports, queries, names = [], [], []
        for i in picks.tolist():
            images = self.classes[self.names[i]]
            rows = torch.randperm(images.shape[0], generator=self.generator)
            rows = rows[: self.support + self.query].to(images.device)
            supports.append(images[rows[: self.support]])
            queries.append(images[rows[self.support :]])
            names.append(self.names[i])
        return Task(torch.stack(supports), torch.stack(queries), tuple(names))
