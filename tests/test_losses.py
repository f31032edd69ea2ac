"""Adversarial losses at known values, and the WGAN-GP and R1 penalties of linear critics in
both forms (autograd with create_graph, and torch.func for vmap)."""

from __future__ import annotations

import math
from collections.abc import Callable

import pytest
import torch
from torch import Tensor
from torch.func import grad, vmap

from metaaug.errors import UserError
from metaaug.gan.losses import (
    LOSSES,
    check_loss,
    d_loss,
    g_loss,
    gp_of_grads,
    mode_seeking,
    r1_of_grads,
    scores_and_input_grads,
)
from metaaug.meta.functional import Pair, d_objective, g_objective, parameters
from metaaug.meta.settings import Adversarial
from metaaug.models.dagan import ImageConditionedGenerator, PairDiscriminator
from metaaug.models.gan import DCGANDiscriminator, DCGANGenerator
from tests.autograd_penalties import interpolates, penalty, r1_penalty

REAL, FAKE = torch.tensor([2.0, 0.5]), torch.tensor([-2.0, 0.0])


def softplus(v: float) -> float:
    return math.log1p(math.exp(v))


# (kind, D loss on REAL/FAKE, G loss on FAKE), each worked out by hand
KNOWN = [
    # -log sigmoid(r) = softplus(-r); -log(1 - sigmoid(f)) = softplus(f)
    (
        "nonsat",
        (softplus(-2.0) + softplus(-0.5)) / 2 + (softplus(-2.0) + softplus(0.0)) / 2,
        (softplus(2.0) + softplus(0.0)) / 2,
    ),
    # E[D(fake)] - E[D(real)] = -1 - 1.25; G: -E[D(fake)] = 1
    ("wgan_gp", -1.0 - 1.25, 1.0),
    # relu(1 - [2, 0.5]) = [0, 0.5]; relu(1 + [-2, 0]) = [0, 1]
    ("hinge", (0 + 0.5) / 2 + (0 + 1) / 2, 1.0),
    # 0.5 * mean([1, 0.25]) + 0.5 * mean([4, 0]); G: 0.5 * mean([9, 1])
    ("lsgan", 0.5 * (1 + 0.25) / 2 + 0.5 * (4 + 0) / 2, 0.5 * (9 + 1) / 2),
]


def test_every_loss_is_registered() -> None:
    assert set(LOSSES) == {"nonsat", "wgan_gp", "hinge", "lsgan"}
    assert {k for k, _, _ in KNOWN} == set(LOSSES)
    for kind in LOSSES:
        assert check_loss(kind) == kind


@pytest.mark.parametrize(("kind", "d_expected", "g_expected"), KNOWN, ids=[k for k, *_ in KNOWN])
def test_losses_have_their_known_values(kind: str, d_expected: float, g_expected: float) -> None:
    assert d_loss(kind, REAL, FAKE).item() == pytest.approx(d_expected, rel=1e-6)
    assert g_loss(kind, FAKE).item() == pytest.approx(g_expected, rel=1e-6)


def test_nonsat_losses_at_zero_logits_are_log2() -> None:
    zero = torch.zeros(5)
    assert d_loss("nonsat", zero, zero).item() == pytest.approx(2 * math.log(2))
    assert g_loss("nonsat", zero).item() == pytest.approx(math.log(2))


def test_hinge_and_lsgan_are_zero_at_their_targets() -> None:
    beyond_margin_real, beyond_margin_fake = torch.tensor([1.0, 3.0]), torch.tensor([-1.0, -5.0])
    assert d_loss("hinge", beyond_margin_real, beyond_margin_fake).item() == 0.0
    ones, zeros = torch.ones(3), torch.zeros(3)
    assert d_loss("lsgan", ones, zeros).item() == 0.0
    assert g_loss("lsgan", ones).item() == 0.0


def test_hinge_gives_no_gradient_beyond_the_margin() -> None:
    real = torch.tensor([3.0, 0.0], requires_grad=True)
    fake = torch.tensor([-3.0, 0.0], requires_grad=True)
    d_loss("hinge", real, fake).backward()
    assert real.grad.tolist() == [0.0, -0.5]
    assert fake.grad.tolist() == [0.0, 0.5]


def test_an_unknown_loss_names_the_known_ones() -> None:
    with pytest.raises(UserError, match=r"^loss='wgan'.*nonsat, wgan_gp, hinge, lsgan"):
        check_loss("wgan")


def linear_critic(norm: float, seed: int = 0) -> tuple[Tensor, Callable[[Tensor], Tensor]]:
    """x -> w.x over each sample's flattened pixels, with ||w|| = norm: grad_x is w everywhere."""
    w = torch.randn(2 * 6 * 6, generator=torch.Generator().manual_seed(seed))
    w = w / w.norm() * norm
    return w, lambda x: x.flatten(1) @ w


@pytest.mark.parametrize(("norm", "expected"), [(1.0, 0.0), (2.0, 1.0), (0.5, 0.25)])
def test_gradient_penalty_of_a_linear_critic(norm: float, expected: float) -> None:
    """Penalty (||w|| - 1)^2, zero when ||w|| = 1, from both forms."""
    _, critic = linear_critic(norm)
    real, fake = torch.randn(4, 2, 6, 6), torch.randn(4, 2, 6, 6)
    x_hat = interpolates(real, fake)
    assert penalty(critic(x_hat), x_hat).item() == pytest.approx(expected, abs=1e-5)
    _, grads = scores_and_input_grads(critic, x_hat.detach())
    assert gp_of_grads(grads).item() == pytest.approx(expected, abs=1e-5)


def test_gradient_penalty_norm_is_per_sample_over_all_pixels() -> None:
    """FIGR took the norm over channels only; here one norm per flattened sample."""
    grads = torch.zeros(2, 2, 3, 3)
    grads[0, :, 0, 0] = torch.tensor([0.6, 0.8])  # norm 1 at one pixel: no penalty
    grads[1] = 1.0 / math.sqrt(18)  # norm 1 spread over all 18 entries: no penalty either
    assert gp_of_grads(grads).item() == pytest.approx(0.0, abs=1e-6)


@pytest.mark.parametrize("norm", [0.5, 1.0, 3.0])
def test_r1_of_a_linear_critic_is_the_squared_weight_norm(norm: float) -> None:
    w, critic = linear_critic(norm, seed=1)
    x = torch.randn(5, 2, 6, 6, requires_grad=True)
    assert r1_penalty(critic(x), x).item() == pytest.approx(w.dot(w).item(), rel=1e-5)
    assert r1_penalty(critic(x), x).item() == pytest.approx(norm**2, rel=1e-5)
    _, grads = scores_and_input_grads(critic, x.detach())
    assert r1_of_grads(grads).item() == pytest.approx(norm**2, rel=1e-5)


def test_r1_of_a_quadratic_critic_and_its_weight_gradient() -> None:
    """D(x) = a * sum(x^2): grad_x = 2 a x, R1 = 4 a^2 E||x||^2, dR1/da = 8 a E||x||^2."""
    a = torch.tensor(0.7, requires_grad=True)
    x = torch.randn(4, 1, 3, 3, requires_grad=True)
    r1 = r1_penalty(a * x.pow(2).flatten(1).sum(1), x)
    sq = x.detach().pow(2).flatten(1).sum(1).mean().item()
    assert r1.item() == pytest.approx(4 * 0.49 * sq, rel=1e-5)
    (da,) = torch.autograd.grad(r1, a)
    assert da.item() == pytest.approx(8 * 0.7 * sq, rel=1e-5)


def test_functional_penalties_match_autograd_and_batch_over_tasks() -> None:
    """scores_and_input_grads is differentiable w.r.t. the critic's weights under grad and vmap,
    and agrees with the autograd form (weights: one scalar per task of a quadratic critic)."""

    def loss(a: Tensor, x: Tensor) -> Tensor:
        scores, grads = scores_and_input_grads(lambda y: a * y.pow(3).flatten(1).sum(1), x)
        return scores.mean() + 10 * gp_of_grads(grads) + r1_of_grads(grads)

    a = torch.tensor([0.3, -0.8])
    x = torch.randn(2, 4, 1, 3, 3, generator=torch.Generator().manual_seed(2))
    batched = vmap(grad(loss))(a, x)
    for t in range(2):
        at = a[t].clone().requires_grad_(True)
        xt = x[t].clone().requires_grad_(True)
        scores = at * xt.pow(3).flatten(1).sum(1)
        (g,) = torch.autograd.grad(scores.sum(), xt, create_graph=True)
        eager = scores.mean() + 10 * gp_of_grads(g) + r1_of_grads(g)
        (expected,) = torch.autograd.grad(eager, at)
        assert batched[t].item() == pytest.approx(expected.item(), rel=1e-5)
        assert grad(loss)(a[t], x[t]).item() == pytest.approx(expected.item(), rel=1e-5)


@pytest.mark.parametrize("r1_weight", [0.0, 0.5])
def test_the_discriminator_objective_is_the_textbook_loss_with_its_penalties(
    r1_weight: float,
) -> None:
    """d_objective (scoring the penalized rows apart, eager or under torch.func.grad) equals
    WGAN loss + 10 * GP + r1 * R1 written out with autograd on the live modules, in value and
    in its gradient w.r.t. D."""
    torch.manual_seed(0)
    G, D = DCGANGenerator(8, 1, 16, 4).double(), DCGANDiscriminator(1, 16, 4).double()
    pair = Pair(G, D, Adversarial("wgan_gp", 10.0, r1_weight=r1_weight))
    real = torch.rand(4, 1, 16, 16, dtype=torch.float64) * 2 - 1
    z, eps = torch.randn(4, 8, dtype=torch.float64), torch.rand(4, 1, 1, 1, dtype=torch.float64)
    g, d = parameters(G), parameters(D)

    fake = G(z).detach()
    x_hat = (eps * real + (1 - eps) * fake).requires_grad_(True)
    x_real = real.clone().requires_grad_(True)
    expected = D(fake).mean() - D(x_real).mean() + 10 * penalty(D(x_hat), x_hat)
    if r1_weight:
        expected = expected + r1_weight * r1_penalty(D(x_real), x_real)
    expected_grads = torch.autograd.grad(expected, list(D.parameters()))

    got = d_objective(d, g, pair, real, z, eps, {}, {})
    assert got.item() == pytest.approx(expected.item(), rel=1e-10)
    got_grads = grad(d_objective)(d, g, pair, real, z, eps, {}, {})
    for want, name in zip(expected_grads, d, strict=True):
        torch.testing.assert_close(got_grads[name], want, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("weight", [0.0, 0.7])
def test_the_generator_objective_adds_the_mode_seeking_term(weight: float) -> None:
    """g_objective with gan.diversity equals the WGAN G loss plus weight / (ratio + 1e-5),
    the ratio written out image by image on the live DAGAN-style modules (image i's second
    draw is image i-1's z under i's own condition), in value and in its gradient w.r.t. G."""
    torch.manual_seed(0)
    G = ImageConditionedGenerator(1, 16, z_dim=6, width=4).double()
    D = PairDiscriminator(1, 16, width=4).double()
    pair = Pair(G, D, Adversarial("wgan_gp", 10.0, diversity=weight))
    x = torch.rand(3, 1, 16, 16, dtype=torch.float64) * 2 - 1
    z = torch.randn(3, 6, dtype=torch.float64)

    made = G(z, x)
    expected = -D(made, x).mean()
    if weight:
        image_gaps, z_gaps = [], []
        for i in range(3):
            other = G(z[i - 1 : i] if i else z[2:3], x[i : i + 1])
            image_gaps.append((made[i] - other[0]).abs().mean())
            z_gaps.append((z[i] - z[i - 1]).abs().mean())
        ratio = torch.stack(image_gaps).mean() / torch.stack(z_gaps).mean()
        expected = expected + weight / (ratio + 1e-5)
    expected_grads = torch.autograd.grad(expected, list(G.parameters()))

    g, d = parameters(G), parameters(D)
    got = g_objective(g, d, pair, z, {}, x)
    assert got.item() == pytest.approx(expected.item(), rel=1e-10)
    got_grads = grad(g_objective)(g, d, pair, z, {}, x)
    for want, name in zip(expected_grads, g, strict=True):
        torch.testing.assert_close(got_grads[name], want, rtol=1e-9, atol=1e-12)


def test_the_mode_seeking_term_punishes_a_generator_that_ignores_z() -> None:
    """One image per condition whatever z: the term is weight / 1e-5; images that move with z
    as much as z moves cost about weight."""
    z = torch.randn(4, 8)
    same = torch.rand(4, 1, 8, 8).expand(4, 1, 8, 8)
    assert mode_seeking(same, same.clone(), z, z.roll(1, 0)).item() == pytest.approx(1e5)
    moved = z.view(4, 1, 1, 8).expand(4, 1, 8, 8)
    assert mode_seeking(moved, moved.roll(1, 0), z, z.roll(1, 0)).item() == pytest.approx(
        1.0, rel=1e-4
    )
