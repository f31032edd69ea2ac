"""Conditional pairs in the meta-learning loop: N-way tasks with slot labels (class-conditional
G and projection D) and DAGAN's image pairs, through the objectives, the vectorized inner loops
and sampling."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import Tensor

from metaaug.data.tasks import Task, TaskSampler
from metaaug.errors import UserError
from metaaug.gan.losses import d_loss, g_loss
from metaaug.meta.adapt import sample
from metaaug.meta.functional import Pair, d_objective, draw_noise, g_objective, parameters
from metaaug.meta.inner import inner_loop
from metaaug.meta.maml import MAML
from metaaug.meta.optimizers import InnerOptimizer
from metaaug.meta.reptile import Reptile
from metaaug.meta.settings import Adversarial, OptimizerSpec
from metaaug.models.conditional import ConditionalGenerator, ProjectionDiscriminator
from metaaug.models.conditioning import partners
from metaaug.models.dagan import ImageConditionedGenerator, PairDiscriminator
from metaaug.models.gan import GAN

Z, WAYS = 8, 3


def conditional_gan() -> GAN:
    torch.manual_seed(0)
    return GAN(
        ConditionalGenerator(Z, 1, 16, WAYS, width=4), ProjectionDiscriminator(1, 16, WAYS, 4)
    )


def dagan() -> GAN:
    torch.manual_seed(0)
    return GAN(ImageConditionedGenerator(1, 16, z_dim=Z, width=4), PairDiscriminator(1, 16, 4))


def numbered_classes(n: int, per: int) -> dict[str, Tensor]:
    """Class c's images are constant images valued c * 1000 + i: their origin is readable."""
    return {
        f"c{c}": (c * 1000 + torch.arange(per, dtype=torch.float32))
        .view(per, 1, 1, 1)
        .expand(per, 1, 4, 4)
        for c in range(n)
    }


def test_n_way_tasks_order_images_by_slot_and_label_them() -> None:
    classes = numbered_classes(8, 6)
    task = TaskSampler(classes, list(classes), support=2, query=1, seed=0, ways=WAYS).sample(2)
    assert task.support.shape == (2, 2 * WAYS, 1, 4, 4) and task.query.shape == (2, WAYS, 1, 4, 4)
    assert len(set(task.class_names)) == 2 * WAYS  # distinct within and across tasks
    labels_s, labels_q = task.labels()
    assert labels_s.tolist() == [[0, 0, 1, 1, 2, 2]] * 2 and labels_q.tolist() == [[0, 1, 2]] * 2
    for b in range(2):
        for images, labels in ((task.support[b], labels_s[b]), (task.query[b], labels_q[b])):
            for value, slot in zip(images[:, 0, 0, 0].tolist(), labels.tolist(), strict=True):
                assert f"c{int(value) // 1000}" == task.class_names[b * WAYS + slot]


def test_one_way_tasks_are_all_slot_zero() -> None:
    images = torch.rand(2, 5, 1, 4, 4)
    labels_s, labels_q = Task(images[:, :3], images[:, 3:], ("a", "b")).labels()
    assert labels_s.tolist() == [[0] * 3] * 2 and labels_q.tolist() == [[0] * 2] * 2


def test_sampler_rejects_more_ways_than_classes() -> None:
    classes = numbered_classes(2, 6)
    with pytest.raises(UserError, match=r"^ways=3.*at most 2"):
        TaskSampler(classes, list(classes), support=2, query=0, seed=0, ways=3)


def test_partners_pair_each_image_with_another_of_its_class() -> None:
    pick = partners((400,), 12, 3, torch.Generator().manual_seed(0))
    assert pick.shape == (400, 12)
    own = torch.arange(12)
    assert (pick != own).all()  # never the image itself
    assert (pick // 4 == own // 4).all()  # always within its block of 4 (one class)
    assert set((pick[:, 0] - 0).tolist()) == {1, 2, 3}  # every shift happens
    with pytest.raises(UserError, match=r"at least 2 .*target\.shots"):
        partners((1,), 3, 3, torch.Generator())


def _draws(pair: Pair, n: int, seed: int = 0):
    return draw_noise(pair, 1, n, 16, torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("loss", ["nonsat", "wgan_gp"])
def test_class_conditional_objectives_condition_reals_and_fakes_on_the_labels(loss: str) -> None:
    gan = conditional_gan()
    adv = Adversarial(loss)
    pair = Pair(gan.generator, gan.discriminator, adv)
    real, labels = torch.rand(6, 1, 16, 16) * 2 - 1, torch.tensor([0, 0, 1, 1, 2, 2])
    nz = _draws(pair, 6)
    g, d = parameters(gan.generator), parameters(gan.discriminator)
    got_d = d_objective(d, g, pair, real, nz.z_d[0, 0], nz.eps[0, 0], {}, {}, labels)
    got_g = g_objective(g, d, pair, nz.z_g[0, 0], {}, labels)

    G, D = gan.generator, gan.discriminator
    fake = G(nz.z_d[0, 0], labels)
    expected = d_loss(loss, D(real, labels), D(fake, labels))
    if adv.gp:
        eps = nz.eps[0, 0]
        x_hat = (eps * real + (1 - eps) * fake).detach().requires_grad_(True)
        (grad,) = torch.autograd.grad(D(x_hat, labels).sum(), x_hat)
        expected = expected + 10 * ((grad.flatten(1).norm(dim=1) - 1) ** 2).mean()
    torch.testing.assert_close(got_d, expected)
    torch.testing.assert_close(got_g, g_loss(loss, D(G(nz.z_g[0, 0], labels), labels)))
    # the labels matter: relabelled, the same images give another loss
    other = d_objective(d, g, pair, real, nz.z_d[0, 0], nz.eps[0, 0], {}, {}, labels.flip(0))
    assert abs(other - got_d) > 1e-6


def test_dagan_objectives_judge_real_pairs_against_generated_pairs() -> None:
    gan = dagan()
    pair = Pair(gan.generator, gan.discriminator, Adversarial("nonsat"))
    real = torch.rand(4, 1, 16, 16) * 2 - 1
    nz = _draws(pair, 4)
    partner = real[nz.pick_d[0, 0]]
    assert not any(torch.equal(a, b) for a, b in zip(real, partner, strict=True))
    g, d = parameters(gan.generator), parameters(gan.discriminator)
    got = d_objective(d, g, pair, real, nz.z_d[0, 0], nz.eps[0, 0], {}, {}, partner)
    G, D = gan.generator, gan.discriminator
    fake = G(nz.z_d[0, 0], partner)  # a new image of each partner's class
    torch.testing.assert_close(got, d_loss("nonsat", D(real, partner), D(fake, partner)))


@pytest.mark.parametrize("make", [conditional_gan, dagan], ids=["conditional", "dagan"])
def test_inner_loop_uses_the_labels_and_vmap_matches_the_loop(make) -> None:
    gan = make()
    ways = WAYS if make is conditional_gan else 1
    images = torch.rand(3, 4 * ways, 1, 16, 16) * 2 - 1  # 2 support + 2 query per class
    labels = torch.arange(ways).repeat_interleave(2).expand(3, -1)
    names = tuple("abcdefghi"[: 3 * ways])
    task = Task(images[:, : 2 * ways], images[:, 2 * ways :], names, labels, labels)
    results = []
    for algo_cls in (Reptile, MAML):
        for vectorize in (True, False):
            copy_ = copy.deepcopy(gan)
            algo = algo_cls(2, OptimizerSpec("sgd", 0.05), 0.1, Adversarial(),
                            meta_optimizer="sgd", vectorize=vectorize)  # fmt: skip
            algo.meta_step(copy_, task, torch.Generator().manual_seed(0))
            results.append(list(copy_.parameters()))
    for a, b in ((0, 1), (2, 3)):
        for v, s in zip(results[a], results[b], strict=True):
            torch.testing.assert_close(v, s, rtol=1e-5, atol=1e-5)
    if make is conditional_gan:
        pair = Pair(gan.generator, gan.discriminator, Adversarial())
        g0, d0 = parameters(gan.generator), parameters(gan.discriminator)
        nz = draw_noise(pair, 2, 6, 16, torch.Generator().manual_seed(1))
        opt = InnerOptimizer(OptimizerSpec("sgd", 0.05))
        labelled = inner_loop(pair, opt, g0, d0, task.support[0], nz, task.support_labels[0])
        unlabelled = inner_loop(pair, opt, g0, d0, task.support[0], nz)
        assert (labelled[0]["embed.weight"] - unlabelled[0]["embed.weight"]).abs().max() > 1e-6


def test_sampling_draws_slot_zero_or_transforms_the_shots_in_turn() -> None:
    gan = conditional_gan()
    got = sample(gan, 5, torch.Generator().manual_seed(3), batch_size=2)
    rng = torch.Generator().manual_seed(3)
    z = torch.cat([torch.randn(m, Z, generator=rng) for m in (2, 2, 1)])  # batch by batch
    with torch.no_grad():
        torch.testing.assert_close(got, gan.generator(z, torch.zeros(5, dtype=torch.long)))

    gan = dagan()
    shots = torch.rand(2, 1, 16, 16) * 2 - 1
    got = sample(gan, 5, torch.Generator().manual_seed(3), batch_size=2, shots=shots)
    with torch.no_grad():
        torch.testing.assert_close(got, gan.generator(z, shots[[0, 1, 0, 1, 0]]))
    with pytest.raises(ValueError, match="shots"):
        sample(gan, 5, torch.Generator())
