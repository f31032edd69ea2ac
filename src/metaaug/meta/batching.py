"""Run one pure per-task function over a meta-batch: vectorized with vmap, or task by task.

Both paths feed the function the same inputs (random draws included, made up front in task
order), so they give the same results up to floating-point reassociation.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch.func import vmap
from torch.utils._pytree import tree_leaves, tree_map


def stack(items: list[Any]) -> Any:
    """Stack a list of identical pytrees of tensors along a new leading (task) dimension."""
    return tree_map(lambda *xs: torch.stack(xs), *items)


def to_device(tree: Any, device: torch.device) -> Any:
    return tree_map(lambda t: t.to(device), tree)


def over_tasks(fn: Callable[..., Any], *batched: Any, vectorize: bool = True) -> Any:
    """`fn` applied to each task's slice of `batched` (pytrees with a leading task dim).

    Returns the per-task outputs stacked along a leading task dimension.
    """
    n = len(tree_leaves(batched[0])[0])
    if vectorize and n > 1:  # one task gains nothing from vmap but its overhead
        return vmap(fn, in_dims=tuple(0 for _ in batched), randomness="error")(*batched)
    outs = [fn(*tree_map(lambda x, i=i: x[i], batched)) for i in range(n)]
    return stack(outs)
