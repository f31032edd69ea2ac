"""The optimizers of the functional inner loop (`metaaug.meta.inner`): one protocol, two
implementations.

- `InnerOptimizer`: SGD or Adam as pure functions, (params, grads, state) -> (params, state).
  Meta-training needs it: vmap batches its state over tasks, and MAML differentiates through
  its update.
- `InPlaceOptimizer`: torch.optim's fused SGD or Adam applied to the parameters in place, for
  the loops nothing differentiates through (the fine-tune, pretrain). One kernel a step over
  every weight (torch's fused Adam against its unfused one, FIGR's 36M weights: 16 ms against
  105 ms on 2 cores), and the numbers of the torch.optim module loops it replaced, to the bit.

The two Adams are the same algorithm but round differently (a fused kernel against separate
tensor ops), so which one a loop uses is part of what its numbers are: meta-training has always
used `InnerOptimizer`, the fine-tune and pretrain torch.optim.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import torch

from metaaug.meta.functional import Params
from metaaug.meta.settings import OptimizerSpec


class Optimizer(Protocol):
    """What the inner loop asks of an optimizer."""

    def init(self, params: Params) -> Any: ...

    def step(
        self, params: Params, grads: Params, state: Any, lrs: Params | None = None
    ) -> tuple[Params, Any]: ...


@dataclass(frozen=True)
class InnerOptimizer:
    """SGD or Adam as pure functions: (params, grads, state) -> (params, state).

    `lrs` (Meta-SGD) replaces the scalar learning rate with one learning rate per weight. The
    update is computed in the parameters' dtype (fp32 masters) from gradients of any dtype.
    The state holds tensors only (Adam's step count too), so a batch of states can be vmapped.
    """

    spec: OptimizerSpec

    def init(self, params: Params) -> dict[str, Any]:
        if self.spec.name == "sgd":
            return {}
        zeros = {k: torch.zeros_like(v) for k, v in params.items()}
        first = next(iter(params.values()))
        return {"m": zeros, "v": dict(zeros), "t": first.new_zeros(())}

    def step(
        self, params: Params, grads: Params, state: dict[str, Any], lrs: Params | None = None
    ) -> tuple[Params, dict[str, Any]]:
        if self.spec.name == "sgd":
            if lrs is not None:  # Meta-SGD: a learning rate per weight
                return {k: p - lrs[k] * grads[k].to(p.dtype) for k, p in params.items()}, state
            if torch.compiler.is_compiling():
                # inductor fuses this into one pass; torch.add's alpha, compiled, drifted from
                # the eager numbers by 1e-3 within two meta-steps (torch 2.14)
                return {k: p - self.spec.lr * grads[k] for k, p in params.items()}, state
            # one pass over each weight instead of two (a multiply, then a subtraction)
            return {
                k: torch.add(p, grads[k], alpha=-self.spec.lr) for k, p in params.items()
            }, state

        lr = lrs if lrs is not None else dict.fromkeys(params, self.spec.lr)
        grads = {k: grads[k].to(p.dtype) for k, p in params.items()}
        b1, b2 = self.spec.betas
        t = state["t"] + 1
        m = {k: b1 * state["m"][k] + (1 - b1) * grads[k] for k in params}
        v = {k: b2 * state["v"][k] + (1 - b2) * grads[k] ** 2 for k in params}
        # bias-corrected Adam (Kingma & Ba 2015, Algorithm 1)
        c1, c2 = 1 - b1**t, 1 - b2**t
        new = {k: p - lr[k] * (m[k] / c1) / ((v[k] / c2).sqrt() + 1e-8) for k, p in params.items()}
        return new, {"m": m, "v": v, "t": t}


@dataclass(frozen=True)
class InPlaceOptimizer:
    """torch.optim's fused optimizer (`OptimizerSpec.build`) behind the inner loop's protocol.

    `init` takes the fp32 masters: leaf tensors (e.g. a module's parameters, detached, so the
    module itself is updated); `step` takes masters that share their storage, in the same
    order, hands the gradients to the torch optimizer, steps in place and returns the same
    dict. Not differentiable and not vmappable, by design. The state is the
    torch optimizer, so `state.state_dict()` checkpoints it.
    """

    spec: OptimizerSpec

    def init(self, params: Params) -> torch.optim.Optimizer:
        return self.spec.build(list(params.values()))

    def step(
        self,
        params: Params,
        grads: Params,
        state: torch.optim.Optimizer,
        lrs: Params | None = None,
    ) -> tuple[Params, torch.optim.Optimizer]:
        if lrs is not None:
            raise ValueError("InPlaceOptimizer has one learning rate; use InnerOptimizer for lrs")
        # the optimizer's own tensors, in `init`'s order: views of the same storage as `params`
        # (a module's parameters detached anew each round), so the update lands in both
        held = state.param_groups[0]["params"]
        for t, k in zip(held, params, strict=True):
            # the gradient in the master's dtype and layout: autograd hands back bf16 ones,
            # and convolution weights' in another stride order (channels-last, or a conv's
            # [out, in] swapped), while the fused kernel reads both tensors in memory order
            t.grad = torch.empty_like(t).copy_(grads[k])
        state.step()
        for t in held:
            t.grad = None  # hold no gradient between steps
        return params, state
