"""gan.class_loss: the class-consistency term against a hand computation, its bank rows, where
each loop uses it, and a train run that carries it to `generate` and the API."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from metaaug.data.tasks import Task
from metaaug.gan.class_loss import SCALE, ClassLoss, class_consistency, frozen, prototype_bank
from metaaug.meta.functional import Pair, draw_noise, parameters
from metaaug.meta.inner import inner_loop
from metaaug.meta.optimizers import InnerOptimizer
from metaaug.meta.pretrain import Pretrain
from metaaug.meta.reptile import Reptile
from metaaug.meta.settings import Adversarial, OptimizerSpec
from metaaug.models.classifier import DomainClassifier
from metaaug.models.dagan import ImageConditionedGenerator, PairDiscriminator
from metaaug.models.gan import GAN, DCGANDiscriminator, DCGANGenerator
from tests.conftest import TINY, Runner, assert_one_line_error


def _unit(*v: float) -> np.ndarray:
    a = np.asarray(v, dtype=np.float64)
    return a / np.linalg.norm(a)


def _ce_first(logits: list[float]) -> float:
    """-log softmax(logits)[0], by hand."""
    return -(logits[0] - math.log(sum(math.exp(x) for x in logits)))


def test_the_term_is_the_cross_entropy_of_cosine_logits_by_hand() -> None:
    fake = [_unit(1, 0), _unit(0, 1), _unit(1, 1)]
    real = [_unit(1, 0.2), _unit(0.6, 1), _unit(1, -0.5)]
    bank = [_unit(0, 1), _unit(-1, 0.3)]
    classes = [0, 0, 1]  # the first two reals are one class, the third another
    own = [1, -1, -1]  # image 0's class is bank row 1: left out of its softmax
    expected = []
    for i in range(3):
        members = [real[j] for j in range(3) if classes[j] == classes[i]]
        prototype = _unit(*np.mean(members, axis=0))
        others = [b for k, b in enumerate(bank) if k != own[i]]
        logits = [SCALE * fake[i] @ prototype, *(SCALE * fake[i] @ b for b in others)]
        expected.append(_ce_first(logits))

    def t(rows: list[np.ndarray]) -> torch.Tensor:
        return torch.tensor(np.stack(rows), dtype=torch.float64)

    got = class_consistency(t(fake), t(real), torch.tensor(classes), t(bank), torch.tensor(own))
    assert got.item() == pytest.approx(np.mean(expected), rel=1e-12)
    # no class ids: one class; no rows: nothing left out
    one = class_consistency(t(fake), t(real), None, t(bank), None)
    prototype = _unit(*np.mean(real, axis=0))
    by_hand = [_ce_first([SCALE * f @ prototype, *(SCALE * f @ b for b in bank)]) for f in fake]
    assert one.item() == pytest.approx(np.mean(by_hand), rel=1e-12)


def _term(weight: float = 1.0, names: tuple[str, ...] = ("a", "b", "c")) -> ClassLoss:
    torch.manual_seed(0)
    classifier = frozen(DomainClassifier(1, 16, len(names), width=4, feature_dim=8))
    classes = {n: torch.rand(6, 1, 16, 16) * 2 - 1 for n in names}
    return ClassLoss(classifier, prototype_bank(classifier, classes, names), names, weight)


def test_bank_rows_follow_the_tasks_images_class_by_class() -> None:
    term = _term()
    rows = term.rows(("a", "new", "c", "b"), ways=2, per_class=3)
    assert rows.tolist() == [[0, 0, 0, -1, -1, -1], [2, 2, 2, 1, 1, 1]]
    # the bank: unit rows, one per class
    assert term.bank.shape == (3, 8)
    assert torch.allclose(term.bank.norm(dim=1), torch.ones(3))


def test_the_term_travels_in_a_state_and_gives_the_same_value() -> None:
    term = _term(weight=0.5)
    back = ClassLoss.from_state(term.state(), torch.device("cpu"))
    fake, real = torch.rand(4, 1, 16, 16) * 2 - 1, torch.rand(4, 1, 16, 16) * 2 - 1
    assert back.names == term.names and back.weight == 0.5
    assert back(fake, real).item() == pytest.approx(term(fake, real).item(), rel=1e-6)
    # the weight scales it, and a real image's own class pulls: its fakes score lower
    assert term(fake, real).item() == pytest.approx(
        0.5 * class_consistency(term.features(fake), term.features(real), None,
                                term.bank, None).item(), rel=1e-6)  # fmt: skip
    assert term(real, real).item() < term(-real, real).item()


def test_the_inner_loop_adds_the_term_to_g_and_moves_g_otherwise() -> None:
    torch.manual_seed(0)
    gan = GAN(DCGANGenerator(8, 1, 16, width=4), DCGANDiscriminator(1, 16, width=4))
    images = torch.rand(4, 1, 16, 16) * 2 - 1
    g0, d0 = parameters(gan.generator), parameters(gan.discriminator)
    results = {}
    for weight in (0.0, 50.0):
        adv = Adversarial(class_loss=_term(weight) if weight else None)
        pair = Pair(gan.generator, gan.discriminator, adv)
        noise = draw_noise(pair, 2, 4, 16, torch.Generator().manual_seed(1))
        results[weight] = inner_loop(pair, InnerOptimizer(OptimizerSpec()), g0, d0, images, noise)
    (g_off, _, _, lg_off), (g_on, _, _, lg_on) = results[0.0], results[50.0]
    # G's loss carries the term (here weighted 50), and G moves otherwise
    assert lg_on.item() > lg_off.item() + 1.0
    assert any(not torch.equal(g_on[k], g_off[k]) for k in g_on)


class _Counting(ClassLoss):
    """The term, counting its calls (where each loop applies it)."""

    calls: list[int]

    def __call__(self, fake, real, labels=None, own=None):  # type: ignore[no-untyped-def]
        self.calls.append(0 if own is None else int((own >= 0).sum()))
        return super().__call__(fake, real, labels, own)


def _counting(names: tuple[str, ...]) -> _Counting:
    base = _term(names=names)
    term = _Counting(base.classifier, base.bank, base.names, 1.0)
    object.__setattr__(term, "calls", [])
    return term


@pytest.mark.parametrize("kind", ["dcgan", "dagan"])
def test_pretrain_applies_the_term_where_a_fake_has_a_class(kind: str) -> None:
    torch.manual_seed(0)
    if kind == "dcgan":
        gan = GAN(DCGANGenerator(8, 1, 16, width=4), DCGANDiscriminator(1, 16, width=4))
    else:
        gan = GAN(ImageConditionedGenerator(1, 16, 8, width=4), PairDiscriminator(1, 16, width=4))
    term = _counting(("a", "b"))
    task = Task(torch.rand(2, 3, 1, 16, 16) * 2 - 1, torch.zeros(2, 0, 1, 16, 16), ("a", "b"))
    Pretrain(OptimizerSpec(), Adversarial(class_loss=term)).meta_step(
        gan, task, torch.Generator().manual_seed(0)
    )
    # pooled classes: a DAGAN fake is of its conditioning image's class (both rows known); an
    # unconditional fake is of no class, so pretrain leaves the term out
    assert term.calls == ([6] if kind == "dagan" else [])


def test_reptile_leaves_out_each_tasks_own_row() -> None:
    torch.manual_seed(0)
    gan = GAN(DCGANGenerator(8, 1, 16, width=4), DCGANDiscriminator(1, 16, width=4))
    term = _counting(("a", "b", "c"))
    algo = Reptile(2, OptimizerSpec("sgd", 1e-3), 0.1, Adversarial(class_loss=term),
                   vectorize=False)  # fmt: skip
    task = Task(torch.rand(2, 4, 1, 16, 16) * 2 - 1, torch.zeros(2, 0, 1, 16, 16), ("a", "new"))
    algo.meta_step(gan, task, torch.Generator().manual_seed(0))
    # two rounds per task; task "a" knows its 4 images' row, task "new" none
    assert term.calls == [4, 4, 0, 0]


def test_a_train_run_carries_the_term_to_generate_and_fewshot(
    metaaug: Runner, tmp_path: Path
) -> None:
    run = tmp_path / "run"
    # fewshot's split (no meta-val, half the classes held out), so that its gan arm may use it
    proc = metaaug("train", *TINY, "gan.class_loss=2.0", "compare_baselines=false",
                   "dataset.val_fraction=0", "dataset.test_fraction=0.5", "validation.every=0",
                   f"hydra.run.dir={run}")  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "class term (gan.class_loss=2)" in proc.stdout + proc.stderr
    checkpoint = run / "checkpoints" / "meta_init.pt"
    state = torch.load(checkpoint, weights_only=False)
    term = state["class_loss"]
    assert term["weight"] == 2.0 and term["names"] == state["classes"]["train"]
    assert term["bank"].shape == (len(term["names"]), 64)

    from metaaug.config.saved import load_saved

    saved = load_saved(checkpoint)
    assert saved.class_loss is not None and saved.class_loss.names == tuple(term["names"])
    shots = next(p for p in (run / "synthetic").iterdir() if p.is_dir())
    out = tmp_path / "gen"
    proc = metaaug("generate", f"checkpoint={checkpoint}", f"shots={shots}", "steps=2",
                   "num_images=4", f"out={out}")  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert len(list(out.rglob("*.png"))) == 4

    # the gan arm adapts with the term; its images filtered and weighted (fewshot.trust)
    proc = metaaug("fewshot", "fewshot.episodes=2", "fewshot.learners=[protonet]",
                   "fewshot.arms=[none,gan]", "arms.gan.per_class=2", "arms.gan.steps=1",
                   "arms.gan.filter=true", "arms.gan.weight=0.5", "metric.epochs=1",
                   "metric.min_steps=0", f"arms.gan.checkpoint={checkpoint}",
                   f"hydra.run.dir={tmp_path / 'fewshot'}")  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    log = proc.stdout + proc.stderr
    assert "with its class term (gan.class_loss=2)" in log
    assert "gan arm: generated images weighted 0.5, filtered by the episode's prototypes" in log
    report = json.loads((tmp_path / "fewshot" / "fewshot.json").read_text())
    assert list(report["kept"]) == ["gan"] and len(report["kept"]["gan"]) == 2
    assert all(0 <= share <= 1 for share in report["kept"]["gan"])
    assert "The filter of `gan` kept" in (tmp_path / "fewshot" / "fewshot.md").read_text()


def test_a_negative_weight_is_refused_in_one_line(refused: Runner) -> None:
    proc = refused("train", "gan.class_loss=-1")
    assert_one_line_error(proc, "gan.class_loss=-1", "a number >= 0")


def test_features_are_unit_vectors() -> None:
    term = _term()
    feats = term.features(torch.rand(3, 1, 16, 16))
    assert torch.allclose(feats.norm(dim=1), torch.ones(3), atol=1e-6)
