"""MAML's meta-gradient is the true derivative; FOMAML is its first-order part; Meta-SGD's
learning rates move to lower the meta-loss; vectorized and sequential paths agree."""

from __future__ import annotations

import copy

import pytest
import torch
from torch.func import grad, vjp
from torch.utils._pytree import tree_map

from metaaug.data.tasks import Task
from metaaug.meta.functional import Pair, d_objective, draw_noise, g_objective, parameters
from metaaug.meta.inner import inner_loop
from metaaug.meta.maml import MAML, dawson_losses, query_judges
from metaaug.meta.metasgd import MetaSGD
from metaaug.meta.optimizers import InnerOptimizer
from metaaug.meta.settings import Adversarial, OptimizerSpec
from metaaug.models.gan import GAN, DCGANDiscriminator, DCGANGenerator

STEPS = 2


def _problem(dtype: torch.dtype = torch.float64):
    """A tiny GAN, one task of 4 support and 4 query images, and every random draw."""
    torch.manual_seed(0)
    gan = GAN(DCGANGenerator(4, 1, 16, width=2), DCGANDiscriminator(1, 16, width=2)).to(dtype)
    pair = Pair(gan.generator, gan.discriminator, Adversarial("wgan_gp", 10.0))
    images = (torch.rand(8, 1, 16, 16, dtype=dtype) * 2 - 1).unbind(0)
    support, query = torch.stack(images[:4]), torch.stack(images[4:])
    rng = torch.Generator().manual_seed(1)
    noise = tuple(draw_noise(pair, s, 4, 16, rng) for s in (STEPS, STEPS, 1))
    noise = tree_map(lambda t: t.to(dtype), noise)
    g0, d0 = parameters(gan.generator), parameters(gan.discriminator)
    return gan, pair, g0, d0, support, query, noise


def _dot(a: dict, b: dict) -> torch.Tensor:
    return sum((a[k] * b[k]).sum() for k in a)


def _shift(p: dict, v: dict, h: float) -> dict:
    return {k: p[k] + h * v[k] for k in p}


@pytest.mark.parametrize("inner", ["sgd", "adam"])
def test_second_order_meta_gradient_matches_finite_differences(inner: str) -> None:
    _, pair, g0, d0, support, query, noise = _problem()
    opt = InnerOptimizer(OptimizerSpec(inner, 0.05 if inner == "sgd" else 0.01))
    g1, _, _, _ = inner_loop(pair, opt, g0, d0, support, noise[0])
    judges = query_judges(pair, opt, g1, d0, query, noise[1])

    def losses(g, d, judged=judges):
        return dawson_losses(pair, opt, g, d, support, query, noise, judges=judged)[0]

    (_, _), pullback = vjp(losses, g0, d0)
    one, zero = torch.ones((), dtype=torch.float64), torch.zeros((), dtype=torch.float64)
    grad_g = pullback((one, zero))[0]
    grad_d = pullback((zero, one))[1]
    # the judges are constants of the meta-gradient: computing them inside changes nothing
    (_, _), inside = vjp(lambda g, d: losses(g, d, None), g0, d0)
    torch.testing.assert_close(inside((one, zero))[0], grad_g)

    torch.manual_seed(3)
    v_g = {k: torch.randn_like(t) for k, t in g0.items()}
    v_d = {k: torch.randn_like(t) for k, t in d0.items()}
    h = 1e-7
    fd_g = (losses(_shift(g0, v_g, h), d0)[0] - losses(_shift(g0, v_g, -h), d0)[0]) / (2 * h)
    fd_d = (losses(g0, _shift(d0, v_d, h))[1] - losses(g0, _shift(d0, v_d, -h))[1]) / (2 * h)
    assert _dot(grad_g, v_g).item() == pytest.approx(fd_g.item(), rel=1e-5, abs=1e-9)
    assert _dot(grad_d, v_d).item() == pytest.approx(fd_d.item(), rel=1e-5, abs=1e-9)


def test_first_order_maml_is_the_gradient_at_the_adapted_weights() -> None:
    """FOMAML drops exactly the second-order term: its meta-gradient is dL/dphi at phi."""
    _, pair, g0, d0, support, query, noise = _problem()
    opt = InnerOptimizer(OptimizerSpec("sgd", 0.05))
    g1, d1, _, _ = inner_loop(pair, opt, g0, d0, support, noise[0])
    d_judge, g_judge = query_judges(pair, opt, g1, d0, query, noise[1])
    noise_m = noise[2]

    def meta_grads(first_order: bool):
        def losses(g, d):
            out = dawson_losses(pair, opt, g, d, support, query, noise, first_order=first_order)
            return out[0]

        _, pullback = vjp(losses, g0, d0)
        one, zero = torch.ones((), dtype=torch.float64), torch.zeros((), dtype=torch.float64)
        return pullback((one, zero))[0], pullback((zero, one))[1]

    fo_g, fo_d = meta_grads(first_order=True)
    at_phi_g = grad(g_objective)(g1, d_judge, pair, noise_m.z_g[0, 0], {})
    at_phi_d = grad(d_objective)(
        d1, g_judge, pair, query, noise_m.z_d[0, 0], noise_m.eps[0, 0], {}, {}
    )
    for k in fo_g:
        torch.testing.assert_close(fo_g[k], at_phi_g[k], rtol=1e-10, atol=1e-12)
    for k in fo_d:
        torch.testing.assert_close(fo_d[k], at_phi_d[k], rtol=1e-10, atol=1e-12)
    so_g, _ = meta_grads(first_order=False)
    difference = sum((so_g[k] - fo_g[k]).abs().sum() for k in so_g)
    assert difference > 1e-6  # the dropped term is real on this problem


def test_metasgd_learning_rates_move_to_lower_the_meta_loss() -> None:
    _, pair, g0, d0, support, query, noise = _problem()
    opt = InnerOptimizer(OptimizerSpec("sgd", 0.02))
    alpha = (
        {k: torch.full_like(v, 0.02) for k, v in g0.items()},
        {k: torch.full_like(v, 0.02) for k, v in d0.items()},
    )
    g1, _, _, _ = inner_loop(pair, opt, g0, d0, support, noise[0], lrs_g=alpha[0], lrs_d=alpha[1])
    judges = query_judges(pair, opt, g1, d0, query, noise[1])

    def meta_loss(lr_g, lr_d):
        out = dawson_losses(
            pair, opt, g0, d0, support, query, noise, lrs_g=lr_g, lrs_d=lr_d, judges=judges
        )
        return out[0][0] + out[0][1]

    before = meta_loss(*alpha)
    grads = grad(meta_loss, argnums=(0, 1))(*alpha)
    step = 1e-4 / max(v.abs().max() for part in grads for v in part.values())
    moved = tuple({k: a[k] - step * g[k] for k in a} for a, g in zip(alpha, grads, strict=True))
    assert meta_loss(*moved) < before


def test_metasgd_trains_its_learning_rates_and_resumes_them() -> None:
    gan, *_ = _problem(torch.float32)
    images = torch.rand(2, 8, 1, 16, 16) * 2 - 1
    task = Task(images[:, :4], images[:, 4:], ("a", "b"))
    algo = MetaSGD(STEPS, OptimizerSpec("sgd", 0.02), 1e-3, Adversarial(), meta_optimizer="sgd")
    logs = algo.meta_step(gan, task, torch.Generator().manual_seed(0))
    lr_g, lr_d = algo.learning_rates()
    assert any(not torch.allclose(v, torch.full_like(v, 0.02)) for v in lr_g.values())
    assert logs["lr_G_mean"] != 0.02
    clone = MetaSGD(STEPS, OptimizerSpec("sgd", 0.02), 1e-3, Adversarial(), meta_optimizer="sgd")
    clone.load_state_dict(algo.state_dict())
    for k, v in clone.learning_rates()[1].items():
        torch.testing.assert_close(v, lr_d[k])


@pytest.mark.parametrize(
    ("algo_cls", "kwargs"), [(MAML, {}), (MAML, {"first_order": True}), (MetaSGD, {})]
)
def test_vectorized_and_sequential_paths_give_the_same_initialization(algo_cls, kwargs) -> None:
    gan, *_ = _problem(torch.float32)
    images = torch.rand(3, 8, 1, 16, 16) * 2 - 1
    task = Task(images[:, :4], images[:, 4:], ("a", "b", "c"))
    results = []
    for vectorize in (True, False):
        copy_ = copy.deepcopy(gan)
        # outer SGD: Adam's first step would blow float noise in ~0 gradients up to +-lr
        algo = algo_cls(STEPS, OptimizerSpec("sgd", 0.02), 0.1, Adversarial(),
                        meta_optimizer="sgd", vectorize=vectorize, **kwargs)  # fmt: skip
        algo.meta_step(copy_, task, torch.Generator().manual_seed(0))
        results.append(list(copy_.parameters()))
    for v, s in zip(*results, strict=True):
        torch.testing.assert_close(v, s, rtol=0, atol=1e-5)


def test_maml_needs_query_images() -> None:
    from metaaug.errors import UserError

    gan, *_ = _problem(torch.float32)
    images = torch.rand(1, 4, 1, 16, 16)
    with pytest.raises(UserError, match=r"meta_algo\.query"):
        MAML(1, OptimizerSpec("sgd", 0.01), 1e-3, Adversarial()).meta_step(
            gan, Task(images, images[:, :0], ("a",)), torch.Generator()
        )


@pytest.mark.parametrize("vectorize", [True, False])
def test_meta_step_applies_the_mean_of_the_tasks_meta_gradients(vectorize: bool) -> None:
    """The outer SGD step moves theta_G by -lr * mean_b dL_G^b/dtheta_G (and D by its own),
    each task's gradient taken on its own with torch.func.grad and the meta-step's draws."""
    gan, pair, g0, d0, *_ = _problem(torch.float64)
    images = torch.rand(3, 8, 1, 16, 16, dtype=torch.float64) * 2 - 1
    task = Task(images[:, :4], images[:, 4:], ("a", "b", "c"))
    spec, lr = OptimizerSpec("sgd", 0.05), 0.5
    rng = torch.Generator().manual_seed(4)
    noises = [tuple(tree_map(lambda t: t.double(), draw_noise(pair, s, 4, 16, rng))
                    for s in (STEPS, STEPS, 1)) for _ in range(3)]  # fmt: skip
    opt = InnerOptimizer(spec)
    expected_g = {k: torch.zeros_like(v) for k, v in g0.items()}
    expected_d = {k: torch.zeros_like(v) for k, v in d0.items()}
    for b in range(3):
        s, q = images[b, :4], images[b, 4:]
        g1, _, _, _ = inner_loop(pair, opt, g0, d0, s, noises[b][0])
        judges = query_judges(pair, opt, g1, d0, q, noises[b][1])

        def loss(g, d, which, s=s, q=q, nz=noises[b], judges=judges):
            return dawson_losses(pair, opt, g, d, s, q, nz, judges=judges)[0][which]

        for k, v in grad(loss, argnums=0)(g0, d0, 0).items():
            expected_g[k] += v / 3
        for k, v in grad(loss, argnums=1)(g0, d0, 1).items():
            expected_d[k] += v / 3
    algo = MAML(STEPS, spec, lr, Adversarial("wgan_gp", 10.0), meta_optimizer="sgd",
                vectorize=vectorize)  # fmt: skip
    algo.meta_step(gan, task, torch.Generator().manual_seed(4))
    for module, theta, expected in ((gan.generator, g0, expected_g),
                                    (gan.discriminator, d0, expected_d)):  # fmt: skip
        for k, p in module.named_parameters():
            torch.testing.assert_close(
                p.detach(), theta[k] - lr * expected[k], rtol=1e-4, atol=1e-6
            )


def test_metasgd_refuses_an_inner_optimizer_other_than_sgd() -> None:
    from metaaug.errors import UserError

    with pytest.raises(UserError, match=r"set inner_optimizer\.name=sgd"):
        MetaSGD(STEPS, OptimizerSpec("adam", 0.01), 1e-3, Adversarial())
