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


def to_device(tree: Any, device: torch.device, dtype: torch.dtype | None = None) -> Any:
    """Move every tensor of `tree` to `device`; with `dtype`, cast the floating-point ones
    (random draws are made in float32 whatever the model's precision)."""

    def move(t: torch.Tensor) -> torch.Tensor:
        if dtype is not None and t.is_floating_point():
            return t.to(device, dtype)
        return t.to(device)

    return tree_map(move, tree)


def over_tasks(fn: Callable[..., Any], *batched: Any, vectorize: bool = True) -> Any:
    """`fn` applied to each task's slice of `batched` (pytrees with a leading task dim; None,
    as an argument or a leaf, passes through as None).

    Returns the per-task outputs stacked along a leading task dimension.
    """
    n = len(tree_leaves(batched)[0])
    if vectorize and n > 1:  # one task gains nothing from vmap but its overhead
        dims = tree_map(lambda b: None if b is None else 0, batched)
        return vmap(fn, in_dims=dims, randomness="error")(*batched)
    outs = [fn(*tree_map(lambda x, i=i: None if x is None else x[i], batched)) for i in range(n)]
    if n == 1:  # a view, not a copy: the outputs may be a whole network's weights
        return tree_map(lambda x: x.unsqueeze(0), outs[0])
    return stack(outs)
