"""hardware.precision and channels_last: bf16 compute on fp32 masters agrees with fp32 within a
stated tolerance; what must stay fp32 does; the memory format changes no number."""

from __future__ import annotations

import copy
import logging

import pytest
import torch

from metaaug.data.tasks import Task
from metaaug.errors import UserError
from metaaug.meta.adapt import adapt
from metaaug.meta.functional import Pair, d_objective, draw_noise, parameters
from metaaug.meta.maml import MAML
from metaaug.meta.optimizers import InnerOptimizer
from metaaug.meta.reptile import Reptile
from metaaug.meta.settings import Adversarial, OptimizerSpec
from metaaug.models.gan import GAN, DCGANDiscriminator, DCGANGenerator
from metaaug.precision import AUTO_MIN_WEIGHTS, Precision, resolve

# A bf16 run of 3 Reptile meta-iterations moves the initialization within this relative
# distance of the fp32 run's move (measured: 0.04-0.08 on the digits DCGAN, width 32 and 8).
BF16_TOLERANCE = 0.15


def _gan(width: int = 8) -> GAN:
    torch.manual_seed(0)
    return GAN(DCGANGenerator(16, 1, 16, width), DCGANDiscriminator(1, 16, width))


def _tasks(steps: int = 3, tasks: int = 2) -> torch.Tensor:
    torch.manual_seed(1)
    return torch.rand(steps, tasks, 8, 1, 16, 16) * 2 - 1


def _move(gan0: GAN, precision: str, algo_cls=Reptile, channels_last: bool = False, **kw):
    """How far `steps` meta-iterations move the initialization (one flat vector)."""
    gan = copy.deepcopy(gan0)
    algo = algo_cls(5, OptimizerSpec("sgd", 1e-2), 0.01, Adversarial(), meta_optimizer="sgd",
                    precision=Precision(precision, "cpu", channels_last), **kw)  # fmt: skip
    rng = torch.Generator().manual_seed(0)
    for images in _tasks():
        algo.meta_step(gan, Task(images[:, :4], images[:, 4:], ("a", "b")), rng)
    assert all(p.dtype == torch.float32 for p in gan.parameters())  # the masters stay fp32
    return _flat_move(gan, gan0)


def _flat_move(gan: GAN, gan0: GAN) -> torch.Tensor:
    pairs = zip(gan.parameters(), gan0.parameters(), strict=True)
    return torch.cat([(p - q).flatten() for p, q in pairs])


def _relative(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a - b).norm() / b.norm()).item()


def test_auto_picks_bf16_where_the_device_has_bf16_units_and_the_gan_is_big(monkeypatch) -> None:
    cpu, big, small = torch.device("cpu"), AUTO_MIN_WEIGHTS, AUTO_MIN_WEIGHTS - 1
    monkeypatch.setattr("metaaug.precision.bf16_is_fast", lambda device: True)
    assert resolve("auto", cpu, weights=big).name == "bf16"
    assert resolve("auto", cpu, weights=small).name == "32"  # overhead-bound: bf16 gains nothing
    monkeypatch.setattr("metaaug.precision.bf16_is_fast", lambda device: False)
    assert resolve("auto", cpu, weights=big).name == "32"
    assert resolve("bf16", cpu, weights=small).name == "bf16"  # asked for: given
    assert resolve(32, cpu).name == "32"  # YAML and the command line give 32 as an int
    with pytest.raises(UserError, match=r"^precision='fp8' is not known; use one of"):
        resolve("fp8", cpu)


@pytest.mark.parametrize("precision", ["bf16", "bf16-mixed"])
@pytest.mark.parametrize("vectorize", [True, False])
def test_bf16_reptile_agrees_with_fp32(precision: str, vectorize: bool) -> None:
    gan0 = _gan()
    reference = _move(gan0, "32", vectorize=vectorize)
    assert _relative(_move(gan0, precision, vectorize=vectorize), reference) < BF16_TOLERANCE


def test_16_mixed_reptile_agrees_with_fp32() -> None:
    gan0 = _gan()
    assert _relative(_move(gan0, "16-mixed"), _move(gan0, "32")) < BF16_TOLERANCE


def test_bf16_updates_below_its_resolution_accumulate_in_the_fp32_master() -> None:
    """100 SGD steps of 1e-4 move a weight of 1 to 0.99; in bf16 (resolution 2**-7 at 1)
    each step would round back to 1."""
    opt = InnerOptimizer(OptimizerSpec("sgd", 1e-4))
    master = {"w": torch.ones(3)}
    grad = {"w": torch.ones(3, dtype=torch.bfloat16)}
    assert torch.equal(torch.ones(3, dtype=torch.bfloat16) - 1e-4 * grad["w"], grad["w"])
    for _ in range(100):
        master, _ = opt.step(master, grad, {})
    assert master["w"].dtype == torch.float32
    torch.testing.assert_close(master["w"], torch.full((3,), 0.99), rtol=0, atol=1e-5)


def test_losses_and_penalties_are_fp32_when_the_networks_compute_in_bf16() -> None:
    gan = _gan()
    prec = Precision("bf16")
    pair = Pair(gan.generator, gan.discriminator, Adversarial("wgan_gp", 10.0), precision=prec)
    noise = draw_noise(pair, 1, 4, 16, torch.Generator().manual_seed(0))
    real = prec.cast(torch.rand(4, 1, 16, 16) * 2 - 1)
    g, d = prec.cast_all(parameters(gan.generator)), prec.cast_all(parameters(gan.discriminator))
    assert all(v.dtype == torch.bfloat16 for v in d.values())
    z, eps = noise.z_d[0, 0].bfloat16(), noise.eps[0, 0].bfloat16()
    loss = d_objective(d, g, pair, real, z, eps, {}, {})
    assert loss.dtype == torch.float32
    fp32 = Pair(gan.generator, gan.discriminator, Adversarial("wgan_gp", 10.0))
    reference = d_objective(
        parameters(gan.discriminator), parameters(gan.generator), fp32,
        real.float(), z.float(), eps.float(), {}, {},
    )  # fmt: skip
    assert loss.item() == pytest.approx(reference.item(), rel=0.05, abs=0.02)


def test_second_order_maml_runs_its_inner_loops_in_fp32(caplog) -> None:
    """Second-order meta-gradients through bf16 were far from fp32's (cosine 0.76 after one
    meta-step): MAML keeps its inner loops fp32 and says so; first order uses bf16."""
    gan0 = _gan()
    with caplog.at_level(logging.INFO):
        bf16 = _move(gan0, "bf16", MAML)
    assert "its inner loops run in fp32" in caplog.text
    torch.testing.assert_close(bf16, _move(gan0, "32", MAML), rtol=0, atol=0)
    first_order = _move(gan0, "bf16", MAML, first_order=True)
    assert not torch.equal(first_order, _move(gan0, "32", MAML, first_order=True))


@pytest.mark.parametrize("vectorize", [True, False])
def test_channels_last_changes_no_number(vectorize: bool) -> None:
    gan0 = _gan()
    torch.testing.assert_close(
        _move(gan0, "32", channels_last=True, vectorize=vectorize),
        _move(gan0, "32", vectorize=vectorize),
        rtol=0, atol=1e-5,
    )  # fmt: skip


def test_bf16_fine_tuning_keeps_fp32_modules_and_agrees_with_fp32() -> None:
    gan0 = _gan()
    shots = torch.rand(5, 1, 16, 16) * 2 - 1
    moves = {}
    for name in ("32", "bf16", "bf16-mixed"):
        gan = copy.deepcopy(gan0)
        adapt(gan, shots, 20, OptimizerSpec("adam", 2e-4), Adversarial(),
              torch.Generator().manual_seed(0), precision=Precision(name))  # fmt: skip
        assert all(p.dtype == torch.float32 for p in gan.parameters())
        moves[name] = _flat_move(gan, gan0)
    for name in ("bf16", "bf16-mixed"):
        assert _relative(moves[name], moves["32"]) < BF16_TOLERANCE
