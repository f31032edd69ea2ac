"""The fine-tune and pretrain run meta-training's functional inner round, with torch's fused
optimizer updating the modules in place: the same numbers, to the bit, as a plain module loop
with torch.optim (the reference below), in fp32 and channels-last, for an unconditional and an
image-conditioned pair."""

from __future__ import annotations

import copy

import pytest
import torch

from metaaug.data.tasks import Task
from metaaug.meta.adapt import adapt
from metaaug.meta.functional import Pair, at, d_objective, draw_noise, g_objective
from metaaug.meta.pretrain import Pretrain
from metaaug.meta.settings import Adversarial, OptimizerSpec
from metaaug.models.dagan import ImageConditionedGenerator, PairDiscriminator
from metaaug.models.gan import GAN, DCGANDiscriminator, DCGANGenerator
from metaaug.precision import Precision

ADV = Adversarial("nonsat", r1_weight=1.0)
SPEC = OptimizerSpec("adam", 5e-3)


def _pair(kind: str) -> GAN:
    torch.manual_seed(0)
    if kind == "dcgan":
        return GAN(DCGANGenerator(16, 1, 16, 8), DCGANDiscriminator(1, 16, 8))
    return GAN(ImageConditionedGenerator(1, 16, 16, 8), PairDiscriminator(1, 16, 8))


def _reference(
    gan: GAN, images: torch.Tensor, rounds: int, rng: torch.Generator, precision: Precision
) -> list[float]:
    """D then G updates with torch.optim on the live modules (the networks computing on their
    weights cast to `precision`), as the loop was written before it ran the functional round."""
    G, D = gan.generator, gan.discriminator
    opt_g, opt_d = SPEC.build(list(G.parameters())), SPEC.build(list(D.parameters()))
    pair, cast = Pair(G, D, ADV, precision=precision), precision.cast_all
    images = precision.cast(images)
    losses = []
    for _ in range(rounds):
        noise = draw_noise(pair, 1, images.shape[0], images.shape[-1], rng)
        frozen_g = cast({k: v.detach() for k, v in G.named_parameters()})
        cond = pair.conditioning.for_step(images, None, noise.pick_d[0, 0])
        live_d = cast(dict(D.named_parameters()))
        loss_d = d_objective(live_d, frozen_g, pair, images, noise.z_d[0, 0], noise.eps[0, 0],
                             at(noise.aug_real, 0, 0), {}, cond)  # fmt: skip
        opt_d.zero_grad()
        loss_d.backward()
        opt_d.step()
        frozen_d = cast({k: v.detach() for k, v in D.named_parameters()})
        cond = pair.conditioning.for_step(images, None, noise.pick_g[0, 0])
        loss_g = g_objective(
            cast(dict(G.named_parameters())), frozen_d, pair, noise.z_g[0, 0], {}, cond
        )
        opt_g.zero_grad()
        loss_g.backward()
        opt_g.step()
        losses += [loss_d.item(), loss_g.item()]
    return losses


@pytest.mark.parametrize("kind", ["dcgan", "dagan"])
@pytest.mark.parametrize("channels_last", [False, True])
def test_fine_tune_gives_the_module_loops_numbers(kind: str, channels_last: bool) -> None:
    shots = torch.rand(6, 1, 16, 16, generator=torch.Generator().manual_seed(1)) * 2 - 1
    ours, theirs = _pair(kind), _pair(kind)
    losses: list[float] = []
    precision = Precision("32", "cpu", channels_last)
    adapt(ours, shots, 4, SPEC, ADV, torch.Generator().manual_seed(2), precision=precision,
          on_step=lambda step, ld, lg: losses.extend([ld, lg]))  # fmt: skip
    expected = _reference(theirs, shots, 4, torch.Generator().manual_seed(2), precision)
    assert losses == expected
    for (name, a), b in zip(ours.named_parameters(), theirs.parameters(), strict=True):
        assert torch.equal(a, b), name


def test_pretrain_keeps_its_adam_state_across_steps_and_in_checkpoints() -> None:
    """Pretrain's Adam state persists over meta-steps (a step after a reload from its state
    dict lands where an uninterrupted run does), and the modules' weights are what moves."""
    images = torch.rand(2, 6, 1, 16, 16, generator=torch.Generator().manual_seed(4)) * 2 - 1
    task = Task(images[:, :3], images[:, 3:], ("a", "b"))
    gan, algo, rng = _pair("dcgan"), Pretrain(SPEC, ADV), torch.Generator().manual_seed(3)
    before = [p.detach().clone() for p in gan.parameters()]
    for _ in range(2):
        algo.meta_step(gan, task, rng)
    assert all(not torch.equal(a, b) for a, b in zip(before, gan.parameters(), strict=True))
    resumed, again = copy.deepcopy(gan), Pretrain(SPEC, ADV)
    again.load_state_dict(copy.deepcopy(algo.state_dict()))
    rng_again = copy.deepcopy(rng)
    algo.meta_step(gan, task, rng)
    again.meta_step(resumed, task, rng_again)
    for a, b in zip(gan.parameters(), resumed.parameters(), strict=True):
        assert torch.equal(a, b)
    fresh = copy.deepcopy(resumed)
    Pretrain(SPEC, ADV).meta_step(fresh, task, copy.deepcopy(rng))  # no state: Adam's step 1
    assert any(not torch.equal(a, b) for a, b in zip(fresh.parameters(), gan.parameters(),
                                                      strict=True))  # fmt: skip
