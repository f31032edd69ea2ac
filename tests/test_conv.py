"""`metaaug.models.conv.Conv2d`: the same numbers as `nn.Conv2d` (values, gradients, WGAN-GP's
double backward, vmap over per-task weights, bfloat16 and autocast, channels_last), the same
parameters and state dict, and a rule that lowers exactly the small, wide layers."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
import torch
from torch import Tensor, nn
from torch.func import functional_call, grad, vmap

from metaaug.gan.losses import gp_of_grads, scores_and_input_grads
from metaaug.models import conv
from metaaug.models.conv import Conv2d, conv2d_as_matmul, uses_matmul
from metaaug.models.figr import FIGRGenerator

# (in, out, kernel, stride, padding, side, bias)
SHAPES = [
    (3, 5, 5, 1, 2, 4, True),  # FIGR's 5x5 "same" convolution
    (4, 6, 3, 1, 1, 2, True),  # the residual pair's 3x3
    (3, 4, 4, 2, 1, 8, False),  # DCGAN's 4x4 stride 2, no bias
    (2, 3, (3, 5), (2, 1), (0, 2), 7, True),  # non-square kernel, stride and padding
]
BF16_TOLERANCE = 2e-2  # relative to the largest fp32 value: bfloat16 keeps 8 bits of mantissa


@pytest.fixture(autouse=True, scope="module")
def two_threads() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def always_matmul(monkeypatch: pytest.MonkeyPatch) -> None:
    """Lower every supported layer, so that small layers test the fast path."""
    monkeypatch.setattr(conv, "uses_matmul", lambda layer, x: True)


def pair(shape: tuple) -> tuple[Conv2d, nn.Conv2d]:
    c_in, c_out, k, s, p, _, bias = shape
    fast = Conv2d(c_in, c_out, k, s, p, bias=bias)
    ref = nn.Conv2d(c_in, c_out, k, s, p, bias=bias)
    ref.load_state_dict(fast.state_dict())
    return fast, ref


def image(shape: tuple, n: int = 3, seed: int = 1) -> Tensor:
    side = shape[5]
    return torch.randn(n, shape[0], side, side, generator=torch.Generator().manual_seed(seed))


def gp_loss(net: nn.Module, params: dict[str, Tensor], x: Tensor) -> Tensor:
    """A critic loss with WGAN-GP's penalty, differentiated as the functional inner loop does."""
    scores, grads = scores_and_input_grads(
        lambda v: functional_call(net, params, (v,)).flatten(1).sum(1), x
    )
    return scores.mean() + 10 * gp_of_grads(grads)


@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_values_and_gradients_equal_nn_conv2d(shape: tuple, always_matmul: None) -> None:
    fast, ref = pair(shape)
    outs, grads = [], []
    for net in (fast, ref):
        x = image(shape).requires_grad_(True)
        y = net(x)
        y.pow(2).sum().backward()
        outs.append(y)
        grads.append([x.grad] + [p.grad for p in net.parameters()])
    torch.testing.assert_close(outs[0], outs[1], rtol=1e-5, atol=1e-5)
    for a, b in zip(*grads, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_gradient_penalty_double_backward_equals_nn_conv2d(
    shape: tuple, always_matmul: None
) -> None:
    fast, ref = pair(shape)
    params = {k: v.detach() for k, v in fast.named_parameters()}
    x = image(shape)
    got = grad(lambda p: gp_loss(fast, p, x))(params)
    want = grad(lambda p: gp_loss(ref, p, x))(params)
    assert got.keys() == want.keys()
    for k in want:
        torch.testing.assert_close(got[k], want[k], rtol=1e-4, atol=1e-5)


def test_vmap_over_per_task_weights_equals_the_loop(always_matmul: None) -> None:
    shape, tasks = SHAPES[0], 3
    fast, ref = pair(shape)
    gen = torch.Generator().manual_seed(2)
    params = {k: torch.randn(tasks, *v.shape, generator=gen) for k, v in fast.named_parameters()}
    x = torch.randn(tasks, 2, 3, 4, 4, generator=gen)

    def loss(net: nn.Module) -> Callable[[dict[str, Tensor], Tensor], Tensor]:
        return lambda p, v: gp_loss(net, p, v)

    got_y = vmap(lambda p, v: functional_call(fast, p, (v,)))(params, x)
    got_g = vmap(grad(loss(fast)))(params, x)
    for t in range(tasks):
        p = {k: v[t] for k, v in params.items()}
        torch.testing.assert_close(got_y[t], functional_call(ref, p, (x[t],)), rtol=1e-5, atol=1e-5)
        want = grad(loss(ref))(p, x[t])
        for k in want:
            torch.testing.assert_close(got_g[k][t], want[k], rtol=1e-4, atol=1e-5)


def test_bfloat16_and_autocast_stay_close_to_float32(always_matmul: None) -> None:
    shape = SHAPES[0]
    fast, ref = pair(shape)
    x = image(shape)
    want = ref(x)
    scale = want.abs().max()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        auto, auto_ref = fast(x), ref(x)
    assert auto.dtype == auto_ref.dtype == torch.bfloat16
    half = Conv2d(*shape[:5], bias=shape[6]).to(torch.bfloat16)
    half.load_state_dict(fast.state_dict())
    low = half(x.to(torch.bfloat16))
    assert low.dtype == torch.bfloat16
    for got in (auto, low):
        assert (got.float() - want).abs().max() <= BF16_TOLERANCE * scale
    auto.float().sum().backward()  # autocast's cast of the fp32 weight is differentiable
    assert fast.weight.grad is not None and fast.weight.grad.dtype == torch.float32


def test_channels_last_input_gives_the_same_values(always_matmul: None) -> None:
    shape = SHAPES[0]
    fast, ref = pair(shape)
    x = image(shape).to(memory_format=torch.channels_last)
    torch.testing.assert_close(fast(x), ref(x), rtol=1e-5, atol=1e-5)


def test_parameters_init_and_state_dict_are_nn_conv2d_s() -> None:
    torch.manual_seed(3)
    fast = Conv2d(4, 6, 5, padding=2)
    torch.manual_seed(3)
    ref = nn.Conv2d(4, 6, 5, padding=2)
    assert isinstance(fast, nn.Conv2d)
    assert [n for n, _ in fast.named_parameters()] == [n for n, _ in ref.named_parameters()]
    for a, b in zip(fast.state_dict().values(), ref.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    ref.load_state_dict(Conv2d(4, 6, 5, padding=2).state_dict())
    fast.load_state_dict(nn.Conv2d(4, 6, 5, padding=2).state_dict())


def test_the_rule_lowers_figr_s_small_wide_bfloat16_layers_only() -> None:
    def lowers(c_in: int, c_out: int, side: int, n: int, dtype: torch.dtype, **kw: int) -> bool:
        layer = Conv2d(c_in, c_out, kw.pop("k", 5), padding=kw.pop("p", 2), device="meta", **kw)
        return uses_matmul(layer, torch.empty(n, c_in, side, side, dtype=dtype))

    bf16 = torch.bfloat16
    assert lowers(1024, 512, 2, 4, bf16)  # FIGR's G at 2x2
    assert lowers(512, 1024, 4, 12, bf16)  # FIGR's D at 4x4, D step
    assert lowers(512, 1024, 4, 4, bf16)  # ... and G step
    assert not lowers(256, 512, 8, 12, bf16)  # FIGR's D at 8x8: oneDNN is faster
    assert not lowers(512, 256, 4, 4, bf16)  # FIGR's G at 4x4: a tie
    assert not lowers(64, 1, 32, 4, bf16)
    assert not lowers(1024, 512, 2, 4, bf16, groups=2)
    assert not lowers(1024, 512, 2, 4, bf16, dilation=2, p=4)
    assert not lowers(1024, 512, 2, 4, bf16, padding_mode="reflect")
    # float32 stays with oneDNN, which is as fast once its buffers are reused (module docstring)
    assert not lowers(1024, 512, 2, 4, torch.float32)
    with torch.autocast("cpu", dtype=bf16):  # autocast runs it in bfloat16
        assert lowers(1024, 512, 2, 4, torch.float32)


def test_figr_generator_in_bfloat16_gives_the_numbers_of_nn_conv2d(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    torch.manual_seed(4)
    net = FIGRGenerator(16, 1, 32, width=32).to(torch.bfloat16)
    z = torch.randn(4, 16, dtype=torch.bfloat16)
    first = net.body[0]  # 512 -> 256 at 2x2: lowered
    assert isinstance(first, Conv2d) and uses_matmul(first, z.new_empty(4, 512, 2, 2))
    fast = net(z).float()
    monkeypatch.setattr(conv, "uses_matmul", lambda layer, x: False)
    assert (fast - net(z).float()).abs().max() <= BF16_TOLERANCE


def test_conv2d_as_matmul_is_f_conv2d() -> None:
    x = torch.randn(2, 3, 6, 5)
    w, b = torch.randn(4, 3, 3, 3), torch.randn(4)
    want = torch.nn.functional.conv2d(x, w, b, (2, 1), (1, 0))
    torch.testing.assert_close(conv2d_as_matmul(x, w, b, (2, 1), (1, 0)), want)
