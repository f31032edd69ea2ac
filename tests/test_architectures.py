"""Every GAN architecture under the contract of the functional meta-learning loop: sizes and
ranges, no batch statistics, `functional_call` + `vmap` over stacked task parameters equal to a
per-task loop, double backward through a gradient penalty, conditioning, spectral norm, and
every `conf/gan/*.yaml` instantiated by Hydra."""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf
from torch import Tensor, nn
from torch.func import functional_call, grad, vmap

from metaaug.errors import UserError
from metaaug.gan.losses import gp_of_grads, scores_and_input_grads
from metaaug.models.conditional import ConditionalGenerator, ProjectionDiscriminator
from metaaug.models.conditioning import conditioning
from metaaug.models.dagan import ImageConditionedGenerator, PairDiscriminator
from metaaug.models.figr import FIGRDiscriminator, FIGRGenerator
from metaaug.models.fusion import FusionGenerator, SetDiscriminator
from metaaug.models.gan import DCGANDiscriminator, DCGANGenerator
from metaaug.models.mlp import MLPDiscriminator, MLPGenerator
from metaaug.models.resnet import ResNetDiscriminator, ResNetGenerator
from metaaug.models.spectral import SpectralNorm, apply_spectral_norm
from tests.autograd_penalties import penalty

CONF = Path(__file__).resolve().parents[1] / "src" / "metaaug" / "conf" / "gan"
Z, WAYS, N, TASKS = 8, 3, 3, 2


@pytest.fixture(autouse=True, scope="module")
def one_thread() -> Iterator[None]:
    """Tiny tensors gain nothing from threads, and on a shared CPU OpenMP's spinning threads
    make them 100x slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@dataclass(frozen=True)
class Arch:
    name: str
    kind: str  # unconditional | conditional | image_conditioned
    sizes: tuple[int, ...]
    make: Callable[[int, int, bool], tuple[nn.Module, nn.Module]]  # (channels, size, sn)

    def __str__(self) -> str:
        return self.name


ARCHS = [
    Arch(
        "dcgan",
        "unconditional",
        (16, 28, 32, 64),
        lambda c, s, sn: (
            DCGANGenerator(Z, c, s, 4),
            DCGANDiscriminator(c, s, 4, spectral_norm=sn),
        ),
    ),
    Arch(
        "figr",
        "unconditional",
        (16, 32, 64),
        lambda c, s, sn: (
            FIGRGenerator(Z, c, s, width=2),
            FIGRDiscriminator(c, s, width=2, spectral_norm=sn),
        ),
    ),
    Arch(
        "resnet",
        "unconditional",
        (16, 32, 64),
        lambda c, s, sn: (
            ResNetGenerator(Z, c, s, width=2),
            ResNetDiscriminator(c, s, width=2, spectral_norm=sn),
        ),
    ),
    Arch(
        "mlp",
        "unconditional",
        (16, 28, 32),
        lambda c, s, sn: (
            MLPGenerator(Z, c, s, hidden=16, layers=2),
            MLPDiscriminator(c, s, hidden=16, layers=2, spectral_norm=sn),
        ),
    ),
    Arch(
        "conditional",
        "conditional",
        (16, 28, 32),
        lambda c, s, sn: (
            ConditionalGenerator(Z, c, s, WAYS, width=4),
            ProjectionDiscriminator(c, s, WAYS, width=4, spectral_norm=sn),
        ),
    ),
    Arch(
        "dagan",
        "image_conditioned",
        (16, 28, 32),
        lambda c, s, sn: (
            ImageConditionedGenerator(c, s, z_dim=Z, width=4),
            PairDiscriminator(c, s, width=4, spectral_norm=sn),
        ),
    ),
    Arch(
        "fusion",
        "set_conditioned",
        (16, 28, 32),
        lambda c, s, sn: (
            FusionGenerator(c, s, z_dim=Z, width=4),
            SetDiscriminator(c, s, width=4, spectral_norm=sn),
        ),
    ),
]


def images(n: int, c: int, s: int, gen: torch.Generator) -> Tensor:
    return torch.rand(n, c, s, s, generator=gen) * 2 - 1


def condition(kind: str, n: int, c: int, s: int, gen: torch.Generator) -> Tensor:
    """What G is conditioned on: labels, an image of the class, or nothing (a dummy)."""
    if kind == "conditional":
        return torch.randint(0, WAYS, (n,), generator=gen)
    if kind == "image_conditioned":
        return images(n, c, s, gen)
    if kind == "set_conditioned":  # three images of the class per image
        return images(n * 3, c, s, gen).view(n, 3, c, s, s)
    return torch.zeros(n)


def g_args(kind: str, z: Tensor, cond: Tensor) -> tuple[Tensor, ...]:
    return (z,) if kind == "unconditional" else (z, cond)


def d_args(kind: str, x: Tensor, cond: Tensor) -> tuple[Tensor, ...]:
    """D's arguments for scoring `x`; a pair D scores x next to its conditioning image."""
    return (x,) if kind == "unconditional" else (x, cond)


def stacked_params(module: nn.Module, tasks: int, gen: torch.Generator) -> dict[str, Tensor]:
    """One perturbed copy of the parameters per task, stacked on a leading task dimension."""
    out = {}
    for name, p in module.named_parameters():
        noise = torch.randn((tasks, *p.shape), generator=gen) * 0.05
        out[name] = p.detach().unsqueeze(0) + noise
    return out


def task(params: dict[str, Tensor], t: int) -> dict[str, Tensor]:
    return {k: v[t] for k, v in params.items()}


def assert_trees_close(a: dict[str, Tensor], b: dict[str, Tensor], **tol: float) -> None:
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], msg=lambda m, k=k: f"{k}: {m}", **tol)


@pytest.mark.parametrize("arch", ARCHS, ids=str)
@pytest.mark.parametrize("channels", [1, 3])
def test_shapes_and_ranges_at_each_size(arch: Arch, channels: int) -> None:
    gen = torch.Generator().manual_seed(0)
    for size in arch.sizes:
        G, D = arch.make(channels, size, False)
        cond = condition(arch.kind, N, channels, size, gen)
        x = G(*g_args(arch.kind, torch.randn(N, G.z_dim, generator=gen), cond))
        assert x.shape == (N, channels, size, size), (arch.name, size)
        assert x.min() >= -1 and x.max() <= 1 and x.std() > 0
        scores = D(*d_args(arch.kind, x, cond))
        assert scores.shape == (N,), (arch.name, size)
        assert torch.isfinite(scores).all()


@pytest.mark.parametrize("arch", ARCHS, ids=str)
def test_no_batch_statistics_and_a_pure_forward(arch: Arch) -> None:
    """No BatchNorm or running statistics; a forward (and backward) writes no buffer, and two
    calls agree. Spectral norm included: its start vector is a fixed buffer."""
    G, D = arch.make(1, 32, True)
    for net in (G, D):
        assert not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in net.modules())
        assert not any(hasattr(m, "running_mean") for m in net.modules())
    assert any(isinstance(m, SpectralNorm) for m in D.modules())
    gen = torch.Generator().manual_seed(1)
    cond = condition(arch.kind, N, 1, 32, gen)
    before = {k: b.clone() for k, b in D.named_buffers()}
    x = G(*g_args(arch.kind, torch.randn(N, Z, generator=gen), cond))
    first = D(*d_args(arch.kind, x, cond))
    first.sum().backward()
    assert_trees_close(dict(D.named_buffers()), before, rtol=0, atol=0)
    torch.testing.assert_close(D(*d_args(arch.kind, x, cond)), first, rtol=0, atol=0)


@pytest.mark.parametrize("spectral", [False, True], ids=["plain", "spectral"])
@pytest.mark.parametrize("arch", ARCHS, ids=str)
def test_vmap_over_task_parameters_equals_the_loop(arch: Arch, spectral: bool) -> None:
    gen = torch.Generator().manual_seed(2)
    G, D = arch.make(1, 32, spectral)
    pg, pd = stacked_params(G, TASKS, gen), stacked_params(D, TASKS, gen)
    z = torch.randn(TASKS, N, Z, generator=gen)
    cond = torch.stack([condition(arch.kind, N, 1, 32, gen) for _ in range(TASKS)])

    def generate(p: dict[str, Tensor], z: Tensor, c: Tensor) -> Tensor:
        return functional_call(G, p, g_args(arch.kind, z, c))

    def score(p: dict[str, Tensor], x: Tensor, c: Tensor) -> Tensor:
        return functional_call(D, p, d_args(arch.kind, x, c))

    fakes = vmap(generate)(pg, z, cond)
    assert fakes.shape == (TASKS, N, 1, 32, 32)
    scores = vmap(score)(pd, fakes, cond)
    assert scores.shape == (TASKS, N)
    for t in range(TASKS):
        fake_t = generate(task(pg, t), z[t], cond[t])
        # relative too: batched and single-task float32 kernels block their sums differently
        # (1.2e-5 apart seen on dagan-spectral's scores (~1), 1.16e-5 on a resnet pixel when
        # torch.compile's tests ran first)
        torch.testing.assert_close(fakes[t], fake_t, rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(
            scores[t], score(task(pd, t), fake_t, cond[t]), rtol=1e-4, atol=1e-5
        )
    # the tasks' parameters differ, so must their outputs (vmap did not broadcast one task)
    assert (fakes[0] - fakes[1]).abs().max() > 1e-4


@pytest.mark.parametrize("spectral", [False, True], ids=["plain", "spectral"])
@pytest.mark.parametrize("arch", ARCHS, ids=str)
def test_gradient_penalty_double_backward_under_vmap(arch: Arch, spectral: bool) -> None:
    """grad w.r.t. D's weights of a WGAN-GP loss that holds grad_x D(x): batched over tasks with
    vmap, equal to the per-task loop, and to plain autograd with create_graph.

    In float64: in float32 the three agree only to ~1e-3 of the largest gradient entry (deep
    LayerNorm stacks of two channels amplify rounding), which would hide a real mismatch.
    """
    gen = torch.Generator().manual_seed(3)
    _, D = arch.make(1, 32, spectral)
    D = D.double()
    pd = {k: v.double() for k, v in stacked_params(D, TASKS, gen).items()}
    real, fake = images(TASKS * N, 1, 32, gen), images(TASKS * N, 1, 32, gen)
    real, fake = real.view(TASKS, N, 1, 32, 32).double(), fake.view(TASKS, N, 1, 32, 32).double()
    cond = torch.stack([condition(arch.kind, 2 * N, 1, 32, gen) for _ in range(TASKS)])
    cond = cond.double() if cond.is_floating_point() else cond

    def critic_loss(p: dict[str, Tensor], real: Tensor, fake: Tensor, c: Tensor) -> Tensor:
        x_hat = 0.3 * real + 0.7 * fake
        scores, grads = scores_and_input_grads(
            lambda x: functional_call(D, p, d_args(arch.kind, x, c)), torch.cat([real, x_hat])
        )
        return scores[N:].mean() - scores[:N].mean() + 10 * gp_of_grads(grads[N:])

    batched = vmap(grad(critic_loss))(pd, real, fake, cond)
    for t in range(TASKS):
        one = grad(critic_loss)(task(pd, t), real[t], fake[t], cond[t])
        assert all(torch.isfinite(g).all() for g in one.values())
        assert sum(g.abs().sum() for g in one.values()) > 0
        assert_trees_close(task(batched, t), one, rtol=1e-9, atol=1e-10)

    # the same gradient from the stateful path: autograd.grad(create_graph=True) on a module
    eager = copy.deepcopy(D)
    names = dict(eager.named_parameters())
    with torch.no_grad():
        for k, v in task(pd, 0).items():
            names[k].copy_(v)
    x_hat = (0.3 * real[0] + 0.7 * fake[0]).requires_grad_(True)
    c = cond[0]
    loss = (
        eager(*d_args(arch.kind, x_hat, c[N:])).mean()
        - eager(*d_args(arch.kind, real[0], c[:N])).mean()
    )
    loss = loss + 10 * penalty(eager(*d_args(arch.kind, x_hat, c[N:])), x_hat)
    loss.backward()
    expected = {k: p.grad for k, p in eager.named_parameters()}
    assert_trees_close(task(batched, 0), expected, rtol=1e-9, atol=1e-10)


def test_conditional_outputs_follow_each_sample_s_own_label() -> None:
    torch.manual_seed(4)
    G, D = ConditionalGenerator(Z, 1, 16, WAYS, width=4), ProjectionDiscriminator(1, 16, WAYS, 4)
    z = torch.randn(3, Z)
    labels, changed = torch.tensor([0, 1, 2]), torch.tensor([0, 2, 2])
    x, x2 = G(z, labels), G(z, changed)
    assert (x[1] - x2[1]).abs().max() > 1e-3  # the relabelled sample changes ...
    torch.testing.assert_close(x[[0, 2]], x2[[0, 2]])  # ... and only it
    s, s2 = D(x, labels), D(x, changed)
    assert abs(s[1] - s2[1]) > 1e-4
    torch.testing.assert_close(s[[0, 2]], s2[[0, 2]])


def test_projection_discriminator_is_linear_plus_class_projection() -> None:
    """D(x, y) = w . phi(x) + b + <e_y, phi(x)> (Miyato & Koyama 2018, eq. 3)."""
    torch.manual_seed(5)
    D = ProjectionDiscriminator(1, 16, WAYS, 4)
    x, y = torch.rand(4, 1, 16, 16) * 2 - 1, torch.tensor([2, 0, 1, 2])
    phi = D.features(x)
    expected = phi @ D.linear.weight[0] + D.linear.bias + (D.embed.weight.T[y] * phi).sum(1)
    torch.testing.assert_close(D(x, y), expected)


def test_dagan_generator_depends_on_the_image_and_the_noise() -> None:
    torch.manual_seed(6)
    G = ImageConditionedGenerator(1, 16, z_dim=Z, width=4)
    x, z = torch.rand(3, 1, 16, 16) * 2 - 1, torch.randn(3, Z)
    out = G(z, x)
    assert out.shape == x.shape
    other_x = x.clone()
    other_x[1] = torch.rand(1, 16, 16) * 2 - 1
    other_z = z.clone()
    other_z[1] = torch.randn(Z)
    for changed in (G(z, other_x), G(other_z, x)):
        assert (changed[1] - out[1]).abs().max() > 1e-3
        torch.testing.assert_close(changed[[0, 2]], out[[0, 2]])


def test_pair_discriminator_scores_the_ordered_pair() -> None:
    torch.manual_seed(7)
    D = PairDiscriminator(1, 16, width=4)
    a, b = torch.rand(2, 1, 16, 16), torch.rand(2, 1, 16, 16)
    torch.testing.assert_close(D(b, a), D.body(torch.cat([a, b], dim=1)))
    assert (D(a, b) - D(b, a)).abs().max() > 1e-5


@pytest.mark.parametrize(
    "make",
    [
        lambda: FIGRGenerator(image_size=28),
        lambda: FIGRDiscriminator(image_size=28),
        lambda: ResNetGenerator(image_size=28, width=2),
        lambda: ResNetDiscriminator(image_size=40, width=2),
    ],
)
def test_figr_pairs_name_the_sizes_they_support(make: Callable[[], nn.Module]) -> None:
    with pytest.raises(UserError, match=r"not supported by the (FIGR|ResNet) pair.*16, 32, 64"):
        make()


def test_figr_pairs_take_smaller_sizes_with_fewer_blocks() -> None:
    G, D = FIGRGenerator(Z, 1, 28, width=2, blocks=2), FIGRDiscriminator(1, 28, 2, blocks=2)
    assert D(G(torch.randn(2, Z))).shape == (2,)


@pytest.mark.parametrize(
    "make", [lambda: ConditionalGenerator(Z, 1, 20, WAYS), lambda: PairDiscriminator(1, 20)]
)
def test_dcgan_based_pairs_name_the_sizes_they_support(make: Callable[[], nn.Module]) -> None:
    with pytest.raises(UserError, match=r"image_size=20 is not supported.*16, 28, 32, 64"):
        make()


# --- spectral normalization ---------------------------------------------------------------

# weight shapes of the discriminators at their config widths (FIGR 64, DCGAN 32, MLP 256),
# a transposed convolution and the projection discriminator's class embedding
SN_SHAPES = [
    ((64, 1, 5, 5), 0),
    ((128, 64, 5, 5), 0),
    ((512, 256, 5, 5), 0),
    ((1, 4096), 0),
    ((32, 2, 4, 4), 0),
    ((128, 64, 4, 4), 0),
    ((1, 2048), 0),
    ((256, 1024), 0),
    ((256, 256), 0),
    ((64, 32, 4, 4), 1),
    ((4096, 5), 0),
    ((64, 64, 3, 3), 0),
]


@pytest.mark.parametrize(("shape", "dim"), SN_SHAPES, ids=str)
def test_spectral_norm_of_random_weights_is_one(shape: tuple[int, ...], dim: int) -> None:
    gen = torch.Generator().manual_seed(8)
    weight = torch.randn(shape, generator=gen)
    sn = SpectralNorm(weight, dim)  # start vector drawn for another weight: a cold start
    for w in (weight, torch.rand(shape, generator=gen) - 0.5):
        normalized = sn(w)
        top = torch.linalg.matrix_norm(normalized.movedim(dim, 0).flatten(1), ord=2)
        assert 1 - 1e-4 <= top.item() <= 1.05, (shape, top.item())


def test_apply_spectral_norm_wraps_every_conv_and_linear_and_survives_a_checkpoint() -> None:
    torch.manual_seed(9)
    G = ImageConditionedGenerator(1, 16, z_dim=Z, width=4)  # Conv2d, ConvTranspose2d, Linear
    layers = [m for m in G.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear))]
    apply_spectral_norm(G)
    apply_spectral_norm(G)  # idempotent
    assert sum(isinstance(m, SpectralNorm) for m in G.modules()) == len(layers)
    for m in layers:
        top = torch.linalg.matrix_norm(
            m.weight.movedim(1 if isinstance(m, nn.ConvTranspose2d) else 0, 0).flatten(1), ord=2
        )
        assert 1 - 1e-4 <= top.item() <= 1.05
    x, z = torch.rand(2, 1, 16, 16), torch.randn(2, Z)
    clone = copy.deepcopy(G)
    restored = apply_spectral_norm(ImageConditionedGenerator(1, 16, z_dim=Z, width=4))
    restored.load_state_dict(G.state_dict())
    torch.testing.assert_close(clone(z, x), G(z, x), rtol=0, atol=0)
    torch.testing.assert_close(restored(z, x), G(z, x), rtol=0, atol=0)


# --- configs ------------------------------------------------------------------------------

CONFIGS = sorted(CONF.glob("*.yaml"))


def test_there_is_a_config_for_every_architecture() -> None:
    assert {p.stem for p in CONFIGS} >= {"dcgan", "figr", "resnet", "mlp", "conditional", "dagan",
                                         "fusion"}  # fmt: skip


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.stem)
def test_every_gan_config_instantiates_both_nets(path: Path) -> None:
    root = OmegaConf.create({"dataset": {"channels": 1, "image_size": 32}})
    root.gan = OmegaConf.load(path)
    g = root.gan
    assert (
        g.spectral_norm is False
        and g.r1_weight == 0.0
        and g.loss in ("nonsat", "wgan_gp", "hinge", "lsgan")
    )
    assert g.discriminator.spectral_norm is False  # interpolated from gan.spectral_norm
    G, D = instantiate(g.generator), instantiate(g.discriminator)
    # the generator declares its conditioning; the training loop reads it from there
    kind = {"none": "unconditional", "class": "conditional", "image": "image_conditioned",
            "set": "set_conditioned"}[conditioning(G).name]  # fmt: skip
    assert kind == {"conditional": "conditional", "dagan": "image_conditioned",
                    "fusion": "set_conditioned"}.get(path.stem, "unconditional")  # fmt: skip
    if kind == "conditional":
        assert g.ways == 5 and G.num_classes == D.num_classes == 5
    gen = torch.Generator().manual_seed(10)
    cond = condition(kind, 2, 1, 32, gen)
    with torch.no_grad():
        x = G(*g_args(kind, torch.randn(2, G.z_dim), cond))
        assert x.shape == (2, 1, 32, 32)
        assert D(*d_args(kind, x, cond)).shape == (2,)
    assert G.z_dim == g.z_dim
    assert not any(isinstance(m, SpectralNorm) for m in D.modules())
    root.gan.spectral_norm = True
    D = instantiate(root.gan.discriminator)
    assert any(isinstance(m, SpectralNorm) for m in D.modules())


def test_figr_config_has_figr_s_numbers() -> None:
    g = OmegaConf.load(CONF / "figr.yaml")
    assert (g.z_dim, g.width, g.blocks, g.loss, g.gp_weight) == (100, 64, 4, "wgan_gp", 10.0)


def n_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_figr_pairs_have_the_layers_of_figr_s_code() -> None:
    """Parameter counts written out from the layer lists of FIGR's model.py (z 100, one channel,
    32 x 32, 4 blocks; width 16 rather than 64 to stay quick: every term scales with it)."""
    w, s0 = 16, 32
    top, side = 16 * w, 2
    # DCGANGenerator: Linear + PReLU + LayerNorm on the flat projection; per block a 5x5 conv,
    # PReLU(C) and LayerNorm([C, H, W]); a final 5x5 conv
    g = 100 * top * side**2 + top * side**2 + top * side**2 + 2 * top * side**2
    for i in range(4):
        cin, cout, s = top // 2**i, top // 2 ** (i + 1), side * 2**i
        g += cin * cout * 25 + cout + cout + 2 * cout * s * s
    g += w * 25 + 1
    # DCGANDiscriminator: 5x5 conv + LayerNorm + PReLU; per block conv, LayerNorm, PReLU; Linear
    d = w * 25 + w + 2 * w * s0 * s0 + w
    for i in range(4):
        cin, s = w * 2**i, s0 // 2**i
        d += cin * 2 * cin * 25 + 2 * cin + 2 * 2 * cin * s * s + 2 * cin
    d += top * side**2 + 1
    assert n_params(FIGRGenerator(100, 1, 32, width=w)) == g
    assert n_params(FIGRDiscriminator(1, 32, width=w)) == d

    # ResNet: per block two residual units of two 3x3 convs, PReLU(C), LayerNorm([C, H, W]),
    # and a 3x3 transition conv, PReLU, LayerNorm
    def unit(c: int, s: int) -> int:
        return 2 * (c * c * 9 + c + c + 2 * c * s * s)

    rg = 100 * top * side**2 + top * side**2 + top * side**2 + 2 * top * side**2
    for i in range(4):
        c, s = top // 2**i, side * 2**i
        rg += 2 * unit(c, s) + c * (c // 2) * 9 + c // 2 + c // 2 + 2 * (c // 2) * s * s
    rg += w * 25 + 1
    rd = w * 49 + w + w + 2 * w * s0 * s0  # 7x7 conv, PReLU, LayerNorm
    for i in range(4):
        c, s = w * 2**i, s0 // 2**i
        rd += 2 * unit(c, s) + c * 2 * c * 9 + 2 * c + 2 * c + 2 * 2 * c * s * s
    rd += top + 1  # global average pool, Linear
    assert n_params(ResNetGenerator(100, 1, 32, width=w)) == rg
    assert n_params(ResNetDiscriminator(1, 32, width=w)) == rd
