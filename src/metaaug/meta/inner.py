"""The GAN inner loop as a pure function of (parameters, images, random draws): one round of
D and G updates, and the loop of rounds. Every GAN loop of metaaug runs `inner_round`:
meta-training's inner loops (vmapped, differentiated by MAML), the fine-tune on the target
shots and pretrain's updates; they differ in the optimizer they hand it
(`metaaug.meta.optimizers`).

Weights come in two copies: fp32 masters, which the optimizers update, and working copies in
the pair's precision (`Pair.precision`), which the networks compute with. In fp32 the two are
the same tensors, so the loop does exactly what a plain fp32 loop does.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any, NamedTuple

import torch
from torch import Tensor
from torch._C import _functorch
from torch.func import grad_and_value
from torch.utils._pytree import tree_map

from metaaug.meta.functional import (
    Noise,
    Pair,
    Params,
    at,
    d_objective,
    detached,
    g_objective,
)
from metaaug.meta.optimizers import Optimizer


class LoopState(NamedTuple):
    """The adapting pair of one inner loop: fp32 masters, their working copies in the pair's
    precision (the same tensors in fp32), and the two optimizers' states. A pytree."""

    g: Params
    d: Params
    g_work: Params
    d_work: Params
    opt_g: Any  # the optimizers' states (`Optimizer.init`)
    opt_d: Any


def start(pair: Pair, optimizer: Optimizer, g: Params, d: Params) -> LoopState:
    """The state of an inner loop that starts from (g, d)."""
    cast = pair.precision.cast_all
    return LoopState(g, d, cast(g), cast(d), optimizer.init(g), optimizer.init(d))


def round_noise(noise: Noise, t: int, batched: bool = False) -> Noise:
    """The draws of round `t` as a one-round Noise (dim 1 is the round when `batched`)."""
    pick = (lambda x: x[:, t : t + 1]) if batched else (lambda x: x[t : t + 1])
    return tree_map(pick, noise)


def _autograd_grad_and_value(
    objective: Callable[..., Tensor], params: Params, *args: Any
) -> tuple[Params, Tensor]:
    """torch.func.grad_and_value's result, by torch.autograd on leaves that share the
    parameters' storage: the same gradients with ~30% less dispatch overhead on small
    networks."""
    leaves = {k: v.detach().requires_grad_() for k, v in params.items()}
    with torch.enable_grad():
        loss = objective(leaves, *args)
        grads = torch.autograd.grad(loss, list(leaves.values()))
    return dict(zip(leaves, grads, strict=True)), loss


def differentiate(objective: Callable[..., Tensor], params: Params) -> Callable[..., Any]:
    """(gradients w.r.t. the first argument, value) of `objective` at `params`.

    Plain autograd where nothing differentiates through the result (no torch.func transform
    active, parameters outside any graph: Reptile, fine-tuning, the query judges); otherwise
    torch.func.grad_and_value, which composes with vmap and with MAML's outer gradient.
    """
    outer = any(v.requires_grad for v in params.values())
    if outer or torch.compiler.is_compiling() or _functorch.peek_interpreter_stack() is not None:
        return grad_and_value(objective)
    return partial(_autograd_grad_and_value, objective)


def inner_round(
    pair: Pair,
    optimizer: Optimizer,
    state: LoopState,
    images: Tensor,
    noise: Noise,
    labels: Tensor | None = None,
    own: Tensor | None = None,
    *,
    first_order: bool = False,
    lrs_g: Params | None = None,
    lrs_d: Params | None = None,
    update_g: bool = True,
) -> tuple[LoopState, Tensor, Tensor]:
    """One round of the inner loop on `images` (in the pair's precision) with the one-round
    draws `noise`: `d_steps` D updates, then `g_steps` G updates.

    Returns the new state and the round's D and G losses ([d_steps], [g_steps]). Gradients are
    taken w.r.t. the working copies and applied to the fp32 masters, which are then cast again
    for the next forward. `own` are the images' rows of the class-consistency term's bank
    (`metaaug.gan.class_loss`; None: classes it does not know).
    """
    adv, cast = pair.adversarial, pair.precision.cast_all
    g, d, g_work, d_work, opt_g, opt_d = state
    losses_d, losses_g = [], []
    for k in range(adv.d_steps):
        cond = pair.conditioning.for_step(images, labels, noise.pick_d[0, k])
        grads, loss = differentiate(d_objective, d_work)(
            d_work, g_work, pair, images, noise.z_d[0, k], noise.eps[0, k],
            at(noise.aug_real, 0, k), at(noise.aug_fake_d, 0, k), cond,
        )  # fmt: skip
        d, opt_d = optimizer.step(d, detached(grads) if first_order else grads, opt_d, lrs_d)
        d_work = cast(d)
        losses_d.append(loss.detach())
    for k in range(adv.g_steps if update_g else 0):
        cond = pair.conditioning.for_step(images, labels, noise.pick_g[0, k])
        grads, loss = differentiate(g_objective, g_work)(
            g_work, d_work, pair, noise.z_g[0, k], at(noise.aug_fake_g, 0, k), cond, images,
            labels, own,
        )  # fmt: skip
        g, opt_g = optimizer.step(g, detached(grads) if first_order else grads, opt_g, lrs_g)
        g_work = cast(g)
        losses_g.append(loss.detach())
    empty = images.new_zeros(0, dtype=torch.float32)
    return (
        LoopState(g, d, g_work, d_work, opt_g, opt_d),
        torch.stack(losses_d) if losses_d else empty,
        torch.stack(losses_g) if losses_g else empty,
    )


def mean_loss(losses: list[Tensor], images: Tensor) -> Tensor:
    """The mean of the rounds' losses, each [..., steps]; 0 when no step was taken (zero rounds,
    or a D-only loop's G). `images` [..., n, C, H, W] give the leading shape in that case."""
    flat = torch.cat(losses, dim=-1) if losses else images.new_zeros(*images.shape[:-4], 0)
    return flat.float().mean(-1) if flat.shape[-1] else flat.new_zeros(flat.shape[:-1]).float()


def inner_loop(
    pair: Pair,
    optimizer: Optimizer,
    g: Params,
    d: Params,
    images: Tensor,
    noise: Noise,
    labels: Tensor | None = None,
    own: Tensor | None = None,
    *,
    first_order: bool = False,
    lrs_g: Params | None = None,
    lrs_d: Params | None = None,
    update_g: bool = True,
) -> tuple[Params, Params, Tensor, Tensor]:
    """Adapt (g, d) to one task's `images` (with their slot `labels`, used by a class-
    conditional pair; None = all slot 0): `inner_round` for every round of `noise`.

    Returns the adapted (g, d) (fp32 masters) and the mean D and G losses. The result is
    differentiable with respect to the starting parameters (second order, as MAML needs)
    unless `first_order`, which stops the gradient at each inner gradient, so that
    d(adapted)/d(start) is the identity (first-order MAML). `update_g=False` adapts D alone
    (DAWSON's query D). `images` and `noise` are in the pair's precision.
    """
    state = start(pair, optimizer, g, d)
    losses_d, losses_g = [], []
    for t in range(noise.z_d.shape[0]):
        state, loss_d, loss_g = inner_round(
            pair, optimizer, state, images, round_noise(noise, t), labels, own,
            first_order=first_order, lrs_g=lrs_g, lrs_d=lrs_d, update_g=update_g,
        )  # fmt: skip
        losses_d.append(loss_d)
        losses_g.append(loss_g)
    return state.g, state.d, mean_loss(losses_d, images), mean_loss(losses_g, images)
