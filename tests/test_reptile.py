"""Reptile's outer update equals its formula: theta + eps * (mean_i phi_i - theta)."""

from __future__ import annotations

import copy

import pytest
import torch

from metaaug.data.tasks import Task
from metaaug.meta.functional import Pair, draw_noise, parameters
from metaaug.meta.inner import inner_loop
from metaaug.meta.optimizers import InnerOptimizer
from metaaug.meta.reptile import Reptile
from metaaug.meta.settings import Adversarial, OptimizerSpec
from metaaug.models.gan import GAN, DCGANDiscriminator, DCGANGenerator

STEPS = 3


def _toy() -> tuple[GAN, Task]:
    torch.manual_seed(0)
    gan = GAN(DCGANGenerator(8, 1, 16, width=4), DCGANDiscriminator(1, 16, width=4))
    images = torch.rand(2, 4, 1, 16, 16) * 2 - 1
    return gan, Task(images, images[:, :0], ("a", "b"))


def _adapted(gan: GAN, task: Task, inner: OptimizerSpec, adv: Adversarial, seed: int):
    """phi_i of every task, computed one task at a time with the same random draws."""
    rng = torch.Generator().manual_seed(seed)
    pair = Pair(gan.generator, gan.discriminator, adv)
    g0, d0 = parameters(gan.generator), parameters(gan.discriminator)
    noises = [draw_noise(pair, STEPS, 4, 16, rng) for _ in range(2)]
    phis = []
    for i, noise in enumerate(noises):
        g, d, _, _ = inner_loop(pair, InnerOptimizer(inner), g0, d0, task.support[i], noise)
        phis.append([*g.values(), *d.values()])
    return phis


@pytest.mark.parametrize("vectorize", [True, False])
def test_reptile_sgd_outer_step_matches_the_formula(vectorize: bool) -> None:
    gan, task = _toy()
    inner, adv, eps = OptimizerSpec("sgd", 0.05), Adversarial("wgan_gp", 10.0), 0.3
    theta = [p.detach().clone() for p in gan.parameters()]
    phis = _adapted(gan, task, inner, adv, seed=7)

    algo = Reptile(STEPS, inner, eps, adv, meta_optimizer="sgd", vectorize=vectorize)
    logs = algo.meta_step(gan, task, torch.Generator().manual_seed(7))

    for j, p in enumerate(gan.parameters()):
        mean_phi = (phis[0][j] + phis[1][j]) / 2
        expected = theta[j] + eps * (mean_phi - theta[j])
        torch.testing.assert_close(p.detach(), expected, rtol=0, atol=1e-5)
    pairs = zip(*phis, theta, strict=True)
    moved = torch.sqrt(sum(((a + b) / 2 - t).pow(2).sum() for a, b, t in pairs))
    assert logs["adapt_distance"] == pytest.approx(moved.item(), rel=1e-5)


def test_reptile_adam_outer_first_step_moves_each_weight_by_meta_lr_towards_phi() -> None:
    """Adam's first step is lr * g / (|g| + eps): every weight moves by ~meta_lr, towards phi."""
    gan, task = _toy()
    inner, adv, lr = OptimizerSpec("sgd", 0.05), Adversarial("nonsat"), 1e-3
    theta = [p.detach().clone() for p in gan.parameters()]
    phis = _adapted(gan, task, inner, adv, seed=3)

    Reptile(STEPS, inner, lr, adv).meta_step(gan, task, torch.Generator().manual_seed(3))
    for j, p in enumerate(gan.parameters()):
        direction = (phis[0][j] + phis[1][j]) / 2 - theta[j]
        big = direction.abs() > 1e-5  # Adam's eps dominates vanishing differences
        step = p.detach() - theta[j]
        torch.testing.assert_close(step[big], lr * direction[big].sign(), rtol=1e-2, atol=1e-7)


def test_vectorized_and_sequential_meta_batches_agree() -> None:
    """A meta-batch of 4 tasks through vmap gives the sequential loop's initialization."""
    gan, _ = _toy()
    images = torch.rand(4, 4, 1, 16, 16) * 2 - 1
    task = Task(images, images[:, :0], tuple("abcd"))
    results = []
    for vectorize in (True, False):
        copy_ = copy.deepcopy(gan)
        # outer SGD: Adam's first step would blow float noise in ~0 gradients up to +-lr
        algo = Reptile(STEPS, OptimizerSpec("adam", 1e-3), 0.5, Adversarial(),
                       meta_optimizer="sgd", vectorize=vectorize)  # fmt: skip
        for seed in range(2):
            algo.meta_step(copy_, task, torch.Generator().manual_seed(seed))
        results.append(list(copy_.parameters()))
    for v, s in zip(*results, strict=True):
        torch.testing.assert_close(v, s, rtol=0, atol=1e-5)


def test_reptile_resumes_its_outer_optimizer_state() -> None:
    gan, task = _toy()
    inner, adv = OptimizerSpec("sgd", 0.05), Adversarial("nonsat")
    a = Reptile(2, inner, meta_lr=1e-3, adversarial=adv)
    gan_b = copy.deepcopy(gan)
    a.meta_step(gan, task, torch.Generator().manual_seed(0))
    b = Reptile(2, inner, meta_lr=1e-3, adversarial=adv)
    b.load_state_dict(a.state_dict())
    gan_b.load_state_dict(gan.state_dict())
    a.meta_step(gan, task, torch.Generator().manual_seed(1))
    b.meta_step(gan_b, task, torch.Generator().manual_seed(1))
    for p, q in zip(gan.parameters(), gan_b.parameters(), strict=True):
        torch.testing.assert_close(p, q, rtol=0, atol=1e-7)


def test_the_outer_step_reads_gradients_of_any_memory_layout() -> None:
    """vmap can return a meta-gradient whose strides differ from its weight's; torch's fused
    CPU optimizers index the gradient with the weight's strides, so it must be re-laid."""
    gan, _ = _toy()
    weight = gan.discriminator.net[0].weight
    before = weight.detach().clone()
    grads_g = {k: torch.zeros_like(v) for k, v in gan.generator.named_parameters()}
    grads_d = {k: torch.zeros_like(v) for k, v in gan.discriminator.named_parameters()}
    odd = torch.randn(weight.shape[0], *weight.shape[2:], weight.shape[1]).permute(0, 3, 1, 2)
    grads_d["net.0.weight"] = odd
    algo = Reptile(1, OptimizerSpec("sgd", 1e-3), 1.0, Adversarial(), meta_optimizer="sgd")
    algo.apply(gan, grads_g, grads_d)
    torch.testing.assert_close(weight.detach(), before - odd, rtol=0, atol=1e-6)


@pytest.mark.parametrize("vectorize", [True, False])
def test_zero_inner_steps_leave_the_initialization_where_it_is(vectorize: bool) -> None:
    """No inner round: every phi_i is theta, so the outer step has nothing to move."""
    gan, task = _toy()
    theta = [p.detach().clone() for p in gan.parameters()]
    algo = Reptile(0, OptimizerSpec("sgd", 1e-3), 0.5, Adversarial(), meta_optimizer="sgd",
                   vectorize=vectorize)  # fmt: skip
    logs = algo.meta_step(gan, task, torch.Generator().manual_seed(0))
    assert logs == {"loss_D": 0.0, "loss_G": 0.0, "adapt_distance": 0.0}
    for before, after in zip(theta, gan.parameters(), strict=True):
        assert torch.equal(before, after.detach())
