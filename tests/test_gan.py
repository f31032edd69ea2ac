"""DCGAN pair sizes, and the fused discriminator pass of the adversarial step."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from metaaug.errors import UserError
from metaaug.gan.losses import d_loss
from metaaug.models.gan import GAN, DCGANDiscriminator, DCGANGenerator


@pytest.mark.parametrize("size", [16, 28, 32, 64])
@pytest.mark.parametrize("channels", [1, 3])
def test_pair_maps_noise_to_images_of_the_dataset_size(size: int, channels: int) -> None:
    gan = GAN(DCGANGenerator(16, channels, size, width=8), DCGANDiscriminator(channels, size, 8))
    x = gan.generator(gan.noise(3))
    assert x.shape == (3, channels, size, size)
    assert x.min() >= -1 and x.max() <= 1
    assert gan.discriminator(x).shape == (3,)


def test_no_batchnorm_in_the_meta_learned_path() -> None:
    gan = GAN(DCGANGenerator(16, 1, 32), DCGANDiscriminator(1, 32))
    assert not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in gan.modules())
    assert any(isinstance(m, nn.GroupNorm) and m.num_groups == 1 for m in gan.modules())


@pytest.mark.parametrize("size", [8, 20, 48])
def test_unsupported_size_names_the_supported_ones(size: int) -> None:
    with pytest.raises(UserError, match=rf"image_size={size} is not supported.*16, 28, 32, 64"):
        DCGANGenerator(16, 1, size)


def test_one_fused_discriminator_pass_equals_separate_passes() -> None:
    """A round of the fine-tune scores real, fake and interpolates in one batch; with no batch
    statistics in D that must equal the textbook loss from three separate passes."""
    from metaaug.meta.adapt import masters, module_round, module_state
    from metaaug.meta.functional import Pair
    from metaaug.meta.optimizers import InPlaceOptimizer
    from metaaug.meta.settings import Adversarial, OptimizerSpec
    from tests.autograd_penalties import interpolates, penalty

    torch.manual_seed(0)
    gan = GAN(DCGANGenerator(8, 1, 16, width=4), DCGANDiscriminator(1, 16, width=4))
    real = torch.rand(4, 1, 16, 16) * 2 - 1
    G, D = gan.generator, gan.discriminator

    rng = torch.Generator().manual_seed(5)
    fake = G(gan.noise(4, rng)).detach()
    x_hat = interpolates(real, fake, rng)
    expected = d_loss("wgan_gp", D(real), D(fake)) + 10 * penalty(D(x_hat), x_hat)

    frozen = InPlaceOptimizer(OptimizerSpec("sgd", 0.0))
    pair = Pair(G, D, Adversarial("wgan_gp", 10.0))
    state = module_state(pair, frozen.init(masters(G)), frozen.init(masters(D)))
    _, got, _ = module_round(pair, frozen, state, real, torch.Generator().manual_seed(5))
    assert got.item() == pytest.approx(expected.item(), rel=1e-5)
