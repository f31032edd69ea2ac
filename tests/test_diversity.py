"""gan.diversity: MSGAN's mode-seeking term read from the config, recorded for resume only when
on, refused when negative, and making z matter to an image-conditioned generator (the term's
value against a hand computation is in test_losses.py); the script that measures whether z
matters."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_module

from metaaug.config import build
from metaaug.config.resume import defining
from metaaug.io.synthetic import save_grid
from metaaug.meta.functional import Pair, g_objective
from metaaug.meta.settings import Adversarial
from metaaug.models.dagan import ImageConditionedGenerator, PairDiscriminator
from tests.conftest import Runner, assert_one_line_error


def _compose(*overrides: str):
    with initialize_config_module("metaaug.conf", version_base="1.3"):
        return compose("train", overrides=["gan=dagan", *overrides])


def test_the_weight_reaches_the_adversarial_settings_and_the_resume_record() -> None:
    off, on = _compose(), _compose("gan.diversity=0.5")
    assert build.adversarial(off).diversity == 0.0
    assert build.adversarial(on).diversity == 0.5
    # off, the key is left out of what a checkpoint records: one written before it resumes
    assert "gan.diversity" not in defining(off)
    assert defining(on)["gan.diversity"] == 0.5


def test_a_negative_weight_is_refused_in_one_line(refused: Runner) -> None:
    proc = refused("train", "gan=dagan", "gan.diversity=-1")
    assert_one_line_error(proc, "gan.diversity=-1", "a number >= 0")


def _spread(G: ImageConditionedGenerator, x: torch.Tensor) -> float:
    """Mean |G(z1, x) - G(z2, x)| over fresh pairs of draws: how much z moves an image."""
    gen = torch.Generator().manual_seed(7)
    with torch.no_grad():
        a = G(torch.randn(len(x), G.z_dim, generator=gen), x)
        b = G(torch.randn(len(x), G.z_dim, generator=gen), x)
    return (a - b).abs().mean().item()


@pytest.mark.parametrize("seed", [0, 1])
def test_the_term_makes_z_move_the_images(seed: int) -> None:
    """The same G trained 30 steps against one fixed D, with and without the term: with it, two
    draws of z give images at least twice as far apart."""
    torch.manual_seed(seed)
    x = torch.rand(8, 1, 16, 16) * 2 - 1
    start = ImageConditionedGenerator(1, 16, z_dim=8, width=8).state_dict()
    D = PairDiscriminator(1, 16, width=8).requires_grad_(False)
    spreads = {}
    for weight in (0.0, 1.0):
        G = ImageConditionedGenerator(1, 16, z_dim=8, width=8)
        G.load_state_dict(start)
        pair = Pair(G, D, Adversarial("wgan_gp", 10.0, diversity=weight))
        opt = torch.optim.Adam(G.parameters(), lr=2e-3, betas=(0.5, 0.999))
        gen = torch.Generator().manual_seed(seed)
        for _ in range(30):
            z = torch.randn(len(x), 8, generator=gen)
            loss = g_objective(dict(G.named_parameters()), dict(D.named_parameters()), pair,
                               z, {}, x)  # fmt: skip
            opt.zero_grad()
            loss.backward()
            opt.step()
        spreads[weight] = _spread(G, x)
    assert spreads[1.0] > 2 * spreads[0.0], spreads


def test_shot_spread_reads_one_image_per_shot_from_a_sample_grid(tmp_path: Path) -> None:
    """scripts/shot_spread.py: a grid whose images repeat the shot they were drawn from (image
    i from shot i mod 5) reads 0; one of independent images about 1; fidelity shares in
    fifths are counted as one verdict per shot."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
    from shot_spread import grid_images, per_shot_verdicts, spread

    gen = torch.Generator().manual_seed(3)
    shots = torch.rand(5, 1, 12, 12, generator=gen)
    repeated = save_grid(shots[torch.arange(64) % 5], tmp_path / "repeated.png")
    varied = save_grid(torch.rand(64, 1, 12, 12, generator=gen), tmp_path / "varied.png")
    images = grid_images(repeated)
    assert images.shape == (64, 144)
    assert spread(images, 5) == pytest.approx(0.0, abs=0.01)
    assert spread(grid_images(varied), 5) == pytest.approx(1.0, abs=0.05)
    assert per_shot_verdicts([0.6, 0.596667, 0.0, 1.0, 0.4, 0.2], 5) == 3
