"""gan=fusion: the set-fusion generator (F2GAN / LoFGAN style) and its set conditioning."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from metaaug.errors import UserError
from metaaug.meta.adapt import sample
from metaaug.meta.functional import Pair, draw_noise, g_objective, parameters
from metaaug.meta.settings import Adversarial
from metaaug.models.conditioning import SET, conditioning
from metaaug.models.fusion import FusionGenerator, SetDiscriminator, fusion_weights
from metaaug.models.gan import GAN
from tests.conftest import TINY, Runner


def _gan() -> GAN:
    torch.manual_seed(0)
    return GAN(FusionGenerator(1, 16, z_dim=8, width=4), SetDiscriminator(1, 16, width=4))


def test_fusion_weights_are_convex_and_drawn_from_the_noise() -> None:
    z = torch.randn(5, 8, generator=torch.Generator().manual_seed(0))
    w = fusion_weights(z, 3)
    assert w.shape == (5, 3) and torch.all(w > 0)
    torch.testing.assert_close(w.sum(1), torch.ones(5))
    torch.testing.assert_close(w, torch.softmax(z[:, :3], dim=1))
    with pytest.raises(UserError, match=r"fuses up to gan\.z_dim=8 shots"):
        fusion_weights(z, 9)


def test_a_set_of_one_image_repeated_is_that_image() -> None:
    gan = _gan().eval()
    z = torch.randn(4, 8, generator=torch.Generator().manual_seed(1))
    shot = torch.rand(1, 1, 16, 16) * 2 - 1
    one = gan.generator(z, shot.unsqueeze(0).expand(4, 1, 1, 16, 16))
    three = gan.generator(z, shot.unsqueeze(0).expand(4, 3, 1, 16, 16))
    # any convex mix of one feature map is that map: the same images
    torch.testing.assert_close(one, three, rtol=1e-5, atol=1e-5)


def test_each_image_is_conditioned_on_its_own_class_set() -> None:
    pick = SET.picks((2, 1), 6, 2, torch.Generator())
    assert pick.shape == (2, 1, 6, 3)
    assert pick[0, 0].tolist() == [[0, 1, 2]] * 3 + [[3, 4, 5]] * 3
    images = torch.arange(6.0).view(6, 1, 1, 1)
    sets = SET.for_step(images, None, pick[0, 0])
    assert sets.shape == (6, 3, 1, 1, 1) and sets[4].flatten().tolist() == [3.0, 4.0, 5.0]
    shots = torch.rand(5, 1, 16, 16)
    assert SET.for_sampling(torch.arange(7), shots, torch.device("cpu")).shape == (7, 5, 1, 16, 16)


def test_the_loops_train_it_and_sampling_reads_the_shots() -> None:
    gan = _gan()
    assert conditioning(gan.generator) is SET
    pair = Pair(gan.generator, gan.discriminator, Adversarial(loss="nonsat"))
    images = torch.rand(4, 1, 16, 16) * 2 - 1
    noise = draw_noise(pair, 1, 4, 16, torch.Generator().manual_seed(0))
    cond = pair.conditioning.for_step(images, None, noise.pick_g[0, 0])
    loss = g_objective(parameters(gan.generator), parameters(gan.discriminator), pair,
                       noise.z_g[0, 0], {}, cond)  # fmt: skip
    assert torch.isfinite(loss)
    fakes = sample(gan, 6, torch.Generator().manual_seed(0), shots=images)
    assert fakes.shape == (6, 1, 16, 16)
    with pytest.raises(ValueError, match="needs the class's shots"):
        sample(gan, 2, torch.Generator())


def test_train_generate_and_fewshot_with_no_fine_tune(metaaug: Runner, tmp_path: Path) -> None:
    run = tmp_path / "run"
    proc = metaaug("train", *TINY, "gan=fusion", "gan.width=4", "finetune.steps=0",
                   "validation.steps=0", "dataset.val_fraction=0", "dataset.test_fraction=0.5",
                   "validation.every=0", "compare_baselines=false",
                   f"hydra.run.dir={run}")  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["finetune_steps"] == 0
    # each image reads every shot: the per-shot spread of an image-conditioned pair is not its
    assert not any("shot_spread" in m for m in metrics["results"].values())
    checkpoint = run / "checkpoints" / "meta_init.pt"
    shots = next(p for p in (run / "synthetic").iterdir() if p.is_dir())
    out = tmp_path / "gen"
    proc = metaaug("generate", f"checkpoint={checkpoint}", f"shots={shots}", "steps=0",
                   "num_images=5", f"out={out}")  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert len(list(out.rglob("*.png"))) == 5
    proc = metaaug("fewshot", "fewshot.episodes=2", "fewshot.learners=[protonet]",
                   "fewshot.arms=[none,gan]", "fewshot.shots=1", "arms.gan.per_class=2",
                   "arms.gan.steps=0", "metric.epochs=1", "metric.min_steps=0",
                   f"arms.gan.checkpoint={checkpoint}",
                   f"hydra.run.dir={tmp_path / 'fs'}")  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads((tmp_path / "fs" / "fewshot.json").read_text())
    assert [r["arm"] for r in report["rows"]] == ["none", "gan"]
