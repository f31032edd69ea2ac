"""`metaaug fewshot`: episodes, statistics, arms and learners, and the command end to end."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy import stats
from torch import Tensor

from metaaug.augment.classic import ClassicAugment
from metaaug.errors import UserError
from metaaug.fewshot import journal
from metaaug.fewshot.arms import ClassicArm, GanArm, MixupArm, NoAugment
from metaaug.fewshot.episodes import Episode, EpisodeSampler
from metaaug.fewshot.fingerprint import digest
from metaaug.fewshot.learned import LearnedAugment, query_loss
from metaaug.fewshot.learners import Prototypes, SupportCNN, meta_train_maml_classifier, small_cnn
from metaaug.fewshot.report import summarize
from metaaug.fewshot.scoring import Schedule, score
from metaaug.fewshot.stats import mean_ci, paired_comparison
from metaaug.io.checkpoint import load, save_atomic
from metaaug.meta.functional import Pair, draw_noise, parameters
from metaaug.meta.inner import inner_loop
from metaaug.meta.optimizers import InnerOptimizer
from metaaug.meta.settings import Adversarial, OptimizerSpec
from metaaug.models.conditional import ConditionalGenerator, ProjectionDiscriminator
from metaaug.models.dagan import ImageConditionedGenerator, PairDiscriminator
from metaaug.models.gan import GAN, DCGANDiscriminator, DCGANGenerator
from tests.conftest import TINY, Runner, assert_one_line_error


def numbered_classes(n: int, per: int) -> dict[str, Tensor]:
    """Class c's images are constant images valued c * 1000 + i: their origin is readable."""
    return {
        f"c{c}": (c * 1000 + torch.arange(per, dtype=torch.float32))
        .view(per, 1, 1, 1)
        .expand(per, 1, 4, 4)
        .clone()
        for c in range(n)
    }


# --- episodes ---------------------------------------------------------------------------------


def test_episodes_come_from_the_given_classes_and_are_reproducible() -> None:
    classes = numbered_classes(10, 8)
    test = ["c5", "c6", "c7", "c8", "c9"]
    sampler = EpisodeSampler(classes, test, ways=3, shots=2, queries=3, seed=0)
    seen = set()
    for i in range(20):
        ep = sampler.episode(i)
        assert set(ep.class_names) <= set(test) and len(set(ep.class_names)) == 3
        assert ep.support.shape == (6, 1, 4, 4) and ep.query.shape == (9, 1, 4, 4)
        for images, labels in ((ep.support, ep.support_labels), (ep.query, ep.query_labels)):
            for value, label in zip(images[:, 0, 0, 0].tolist(), labels.tolist(), strict=True):
                assert f"c{int(value) // 1000}" == ep.class_names[label]
        assert not set(ep.support[:, 0, 0, 0].tolist()) & set(ep.query[:, 0, 0, 0].tolist())
        again = sampler.episode(i)
        assert torch.equal(again.support, ep.support) and torch.equal(again.query, ep.query)
        seen.add(tuple(ep.support[:, 0, 0, 0].tolist()))
    assert len(seen) == 20  # episodes differ from one another


def test_a_fixed_support_is_the_support_and_never_a_query() -> None:
    classes = numbered_classes(4, 8)
    fixed = {"c1": [6, 2]}
    sampler = EpisodeSampler(classes, list(classes), 4, 2, 5, seed=0, fixed_support=fixed)
    for i in range(5):
        ep = sampler.episode(i)
        slot = ep.class_names.index("c1")
        support = ep.support[ep.support_labels == slot][:, 0, 0, 0].tolist()
        query = ep.query[ep.query_labels == slot][:, 0, 0, 0].tolist()
        assert support == [1006.0, 1002.0] and not {1006.0, 1002.0} & set(query)
    with pytest.raises(UserError, match=r"generated from 2 shots; set shots=2"):
        EpisodeSampler(classes, list(classes), 4, 3, 2, seed=0, fixed_support=fixed)
    with pytest.raises(UserError, match=r"shot rows \[6, 8\] outside its 8 images"):
        EpisodeSampler(classes, list(classes), 4, 2, 5, seed=0, fixed_support={"c1": [6, 8]})


def test_episode_sampler_rejects_impossible_settings() -> None:
    classes = numbered_classes(6, 8)
    with pytest.raises(UserError, match=r"^ways=5 but the meta-test split has 3"):
        EpisodeSampler(classes, ["c0", "c1", "c2"], ways=5, shots=1, queries=1, seed=0)
    with pytest.raises(UserError, match=r"8 images .* shots \+ queries = 5 \+ 4"):
        EpisodeSampler(classes, list(classes), ways=2, shots=5, queries=4, seed=0)


class Recorder:
    """A learner that remembers what it was trained and scored on."""

    name = "recorder"

    def __init__(self) -> None:
        self.calls: list[tuple[float, float, float]] = []

    def accuracy(self, images, targets, query, labels, rng) -> float:
        self.calls.append((images[: len(labels)].sum().item(), query.sum().item(),
                           torch.rand(1, generator=rng).item()))  # fmt: skip
        return float(len(images))


def test_every_arm_sees_the_same_episodes_and_learner_randomness() -> None:
    classes = numbered_classes(6, 8)
    sampler = EpisodeSampler(classes, list(classes), ways=2, shots=2, queries=2, seed=1)
    recorder = Recorder()
    arms = {"none": NoAugment(), "mixup": MixupArm(copies=2)}
    acc, _ = score(sampler, arms, {"recorder": recorder}, Schedule(episodes=5, seed=1))
    calls = recorder.calls
    assert [calls[2 * i] for i in range(5)] == [calls[2 * i + 1] for i in range(5)]
    assert acc["recorder"]["none"].tolist() == [4.0] * 5
    assert acc["recorder"]["mixup"].tolist() == [12.0] * 5


class Keeper:
    """A learner that keeps what it was trained on; its "accuracy" is the image count."""

    name = "keeper"

    def __init__(self) -> None:
        self.seen: list[tuple[Tensor, Tensor]] = []

    def accuracy(self, images, targets, query, labels, rng) -> float:
        self.seen.append((images, targets))
        return float(len(images))


def test_a_combined_arm_adds_what_each_of_its_arms_adds_to_the_same_episode() -> None:
    """classic+mixup: the support once, then classic's own extra images, then mixup's: the
    very images those arms train on in the episode (made once, listed before or after it)."""
    _, sampler = _digit_samplers(2, 2, 2)
    for names in (["none", "classic", "mixup", "classic+mixup"],
                  ["none", "classic+mixup", "classic", "mixup"]):  # fmt: skip
        keeper = Keeper()
        arms = {"none": NoAugment(), "classic": ClassicArm(ClassicAugment(), copies=2),
                "mixup": MixupArm(copies=3), "classic+mixup": None}  # fmt: skip
        chosen = {n: arms[n] for n in names}
        acc, _ = score(sampler, chosen, {"keeper": keeper}, Schedule(2, seed=1))
        assert acc["keeper"]["classic+mixup"].tolist() == [4 + 8 + 12] * 2
        seen = dict(zip(names, keeper.seen[: len(names)], strict=True))  # episode 0
        both, classic, mixup = seen["classic+mixup"], seen["classic"], seen["mixup"]
        assert not torch.equal(classic[0][4:], classic[0][:4].repeat(2, 1, 1, 1))  # transformed
        for k in (0, 1):  # images, then targets
            torch.testing.assert_close(both[k][:4], seen["none"][k], rtol=0, atol=0)
            torch.testing.assert_close(both[k][4:12], classic[k][4:], rtol=0, atol=0)
            torch.testing.assert_close(both[k][12:], mixup[k][4:], rtol=0, atol=0)


def test_workers_give_the_numbers_of_a_one_thread_run() -> None:
    """Episodes shared among forked processes: per-episode accuracies identical to one process
    on one thread (each episode depends on its seeds alone), in episode order."""
    _, test = _digit_samplers(3, 2, 5)
    arms = {"none": NoAugment(), "classic": ClassicArm(ClassicAugment(), copies=2)}
    learners = {"plain": SupportCNN(steps=10, width=4)}
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        alone, _ = score(test, arms, learners, Schedule(episodes=6, seed=3))
    finally:
        torch.set_num_threads(threads)
    shared, _ = score(test, arms, {**learners, "pid": Pid()}, Schedule(6, seed=3, workers=2))
    for arm in arms:
        assert shared["plain"][arm].tolist() == alone["plain"][arm].tolist()
    assert len(set(alone["plain"]["none"].tolist())) > 1  # the episodes differ
    assert os.getpid() not in set(shared["pid"]["none"].tolist())  # other processes ran them


class Counting:
    """An episode sampler that notes which episodes were drawn from it."""

    def __init__(self, sampler: EpisodeSampler) -> None:
        self.sampler, self.drawn = sampler, []

    def episode(self, i: int) -> Episode:
        self.drawn.append(i)
        return self.sampler.episode(i)


@pytest.mark.parametrize("workers", [1, 2])
def test_a_stopped_run_s_journal_is_taken_up_with_the_figures_of_one_run(
    tmp_path: Path, workers: int
) -> None:
    """A run stopped after 3 of 6 episodes kept them in its journal; a run taking the journal
    up scores only episodes 3-5, and its figures equal those of a run never stopped."""
    _, test = _digit_samplers(3, 2, 5)
    arms = {"none": NoAugment(), "classic": ClassicArm(ClassicAugment(), copies=2)}
    learners = {"plain": SupportCNN(steps=10, width=4)}
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the numbers of forked workers are one-thread numbers
    try:
        whole, _ = score(test, arms, learners, Schedule(6, seed=3))
        path = tmp_path / journal.FILE
        with journal.opened(path, {"seed": 3}, {}) as stopped:
            part = stopped.part("episodes")

            def stop_after_2(i: int, result: journal.Result) -> None:
                part.record(i, result)
                if i == 2:
                    raise KeyboardInterrupt

            with pytest.raises(KeyboardInterrupt):
                score(test, arms, learners, Schedule(6, seed=3), journal.Part({}, stop_after_2))
        defines, taken = journal.read(path)
        assert defines == {"seed": 3} and sorted(taken["episodes"]) == [0, 1, 2]
        counting = Counting(test)
        again = tmp_path / "again.jsonl"
        with journal.opened(again, defines, taken) as resumed:
            part = resumed.part("episodes")
            acc, _ = score(counting, arms, learners, Schedule(6, seed=3, workers=workers), part)
    finally:
        torch.set_num_threads(threads)
    if workers == 1:  # (forked workers draw in their own processes)
        assert counting.drawn == [3, 4, 5]
    for arm in arms:
        assert acc["plain"][arm].tolist() == whole["plain"][arm].tolist()
    # the new journal is whole by itself: all six episodes, for a run stopped once more
    assert sorted(journal.read(again)[1]["episodes"]) == list(range(6))


def test_a_journal_s_torn_last_line_is_dropped_and_other_damage_refused(tmp_path: Path) -> None:
    path = tmp_path / journal.FILE
    with journal.opened(path, {"seed": 0}, {}) as j:
        record = j.part("episodes").record
        for i in range(3):
            record(i, ({"plain": {"none": 0.5 + i / 10}}, {}))
    with open(path, "a") as f:
        f.write('{"source": "episodes", "episode": 3, "accur')  # killed while writing
    _, taken = journal.read(path)
    assert taken["episodes"] == {i: ({"plain": {"none": 0.5 + i / 10}}, {}) for i in range(3)}
    lines = path.read_text().splitlines()
    path.write_text("\n".join([lines[0], "{not json", *lines[1:3]]) + "\n")
    with pytest.raises(UserError, match=r"line 2 of .* is not a scored episode.*start a new run"):
        journal.read(path)
    path.write_text("{}\n")
    with pytest.raises(UserError, match=r"line 1 of .* is not the header"):
        journal.read(path)


def test_a_journal_is_taken_up_wherever_the_dataset_now_lies(tmp_path: Path) -> None:
    """`dataset.root` (and the source's copy of it) may move between the stopped run and the
    one that goes on; a key that defines the episodes may not."""
    from metaaug.config.overrides import composed
    from metaaug.config.resume import defining, fewshot_defining, taken_episodes

    def config(*extra: str):
        return composed("fewshot", ["dataset=omniglot", *extra])

    stopped = config("dataset.root=/data/here")
    path = tmp_path / journal.FILE
    with journal.opened(path, fewshot_defining(stopped), {}) as j:
        j.part("episodes").record(0, ({"plain": {"none": 0.5}}, {}))
    moved = config("dataset.root=/data/there", f"resume={path}", "fewshot.workers=2")
    assert taken_episodes(moved) == {"episodes": {0: ({"plain": {"none": 0.5}}, {})}}
    with pytest.raises(UserError, match=r"other settings \(fewshot.queries: 15 -> 10\)"):
        taken_episodes(config("dataset.root=/data/there", f"resume={path}", "fewshot.queries=10"))
    assert not {"dataset.root", "dataset.source.root"} & set(defining(moved))  # train's too

    # the GAN's file may move only where the journal records the weights it held (checked by
    # `check_weights`); an older journal's checkpoint path is checked as before
    gan = "arms.gan.checkpoint=/runs/a/meta_init.pt"
    for weights, refused in (({"arms.gan": "0123456789abcdef"}, False), (None, True)):
        path = tmp_path / f"{refused}" / journal.FILE
        path.parent.mkdir()
        head = fewshot_defining(config(gan))
        with journal.opened(path, head if weights is None else {**head, "weights": weights}, {}):
            pass
        again = config("arms.gan.checkpoint=/runs/b/meta_init.pt", f"resume={path}")
        if refused:
            with pytest.raises(UserError, match=r"arms.gan.checkpoint: /runs/a/meta_init.pt ->"):
                taken_episodes(again)
        else:
            assert taken_episodes(again) == {}


class Pid:
    """A learner whose "accuracy" is the id of the process that ran it."""

    name = "pid"

    def accuracy(self, images, targets, query, labels, rng) -> float:
        return float(os.getpid())


# --- statistics -------------------------------------------------------------------------------


def test_confidence_interval_matches_scipy() -> None:
    x = np.random.default_rng(0).normal(0.6, 0.1, size=37)
    ci = mean_ci(x, 0.95)
    low, high = stats.t.interval(0.95, len(x) - 1, loc=x.mean(), scale=stats.sem(x))
    assert ci.low == pytest.approx(low, rel=1e-12) and ci.high == pytest.approx(high, rel=1e-12)
    assert mean_ci(x, 0.99).half_width > ci.half_width


def test_paired_test_matches_scipy() -> None:
    rng = np.random.default_rng(1)
    base = rng.uniform(0.3, 0.9, size=50)
    arm = base + rng.normal(0.02, 0.03, size=50)
    paired = paired_comparison(arm, base)
    assert paired.p_value == pytest.approx(stats.ttest_rel(arm, base).pvalue, rel=1e-10)
    assert paired.diff.mean == pytest.approx((arm - base).mean())
    assert paired_comparison(base, base).p_value == 1.0


def test_summary_rows_compare_each_arm_with_none() -> None:
    acc = {"l": {"none": np.array([0.5, 0.6, 0.7]), "x": np.array([0.6, 0.6, 0.9])}}
    rows = summarize(acc, 0.95)
    assert [r["arm"] for r in rows] == ["none", "x"]
    assert rows[0]["diff"] is None
    assert rows[1]["diff"] == pytest.approx(0.1)
    assert rows[1]["p_value"] == pytest.approx(
        stats.ttest_rel([0.6, 0.6, 0.9], [0.5, 0.6, 0.7]).pvalue
    )


# --- arms -------------------------------------------------------------------------------------


def _episode() -> Episode:
    gen = torch.Generator().manual_seed(0)
    support = torch.rand(6, 1, 8, 8, generator=gen) * 2 - 1
    labels = torch.tensor([0, 0, 1, 1, 2, 2])
    return Episode(support, labels, support[:3], labels[:3], ("a", "b", "c"))


def test_classic_and_mixup_keep_the_support_and_add_labelled_images() -> None:
    ep = _episode()
    for arm in (ClassicArm(ClassicAugment(rotate=20), copies=3), MixupArm(copies=3)):
        images, targets = arm(ep, torch.Generator().manual_seed(0))
        assert images.shape == (24, 1, 8, 8) and targets.shape == (24, 3)
        assert torch.equal(images[:6], ep.support)
        assert torch.equal(targets[:6].argmax(1), ep.support_labels)
        torch.testing.assert_close(targets.sum(1), torch.ones(24))
        assert images.min() >= -1 and images.max() <= 1
    images, targets = ClassicArm(ClassicAugment(rotate=20), copies=3)(ep, torch.Generator())
    assert torch.equal(targets[6:].argmax(1), ep.support_labels.repeat(3))
    assert not torch.equal(images[6:12], ep.support)  # transformed


def test_mixup_images_are_the_mixtures_their_targets_say() -> None:
    """With two classes of constant images, a mixture's value gives its weight."""
    support = torch.tensor([-1.0, 1.0]).view(2, 1, 1, 1).expand(2, 1, 4, 4)
    ep = Episode(support, torch.tensor([0, 1]), support, torch.tensor([0, 1]), ("a", "b"))
    images, targets = MixupArm(alpha=1.0, copies=50)(ep, torch.Generator().manual_seed(0))
    weight_of_b = (images[2:, 0, 0, 0] + 1) / 2
    torch.testing.assert_close(targets[2:, 1], weight_of_b)
    assert 0.3 < targets[2:, 1].mean() < 0.7  # Beta(1, 1) mixtures and both orders of pairs


def _gans() -> dict[str, GAN]:
    torch.manual_seed(0)
    return {
        "dcgan": GAN(DCGANGenerator(8, 1, 16, width=4), DCGANDiscriminator(1, 16, width=4)),
        "conditional": GAN(ConditionalGenerator(8, 1, 16, 3, width=4),
                           ProjectionDiscriminator(1, 16, 3, 4)),
        "dagan": GAN(ImageConditionedGenerator(1, 16, z_dim=8, width=4),
                     PairDiscriminator(1, 16, 4)),
    }  # fmt: skip


@pytest.mark.parametrize("kind", ["dcgan", "conditional", "dagan"])
def test_gan_arm_adapts_one_copy_per_class_and_samples_it(kind: str) -> None:
    """Each class's images come from the initialization adapted to that class's shots alone:
    the vectorized arm equals a per-class loop with the same random draws."""
    gan = _gans()[kind]
    adv, spec, steps, per_class = Adversarial(), OptimizerSpec("adam", 1e-2), 2, 4
    shots = torch.rand(3, 2, 1, 16, 16, generator=torch.Generator().manual_seed(1)) * 2 - 1
    labels = torch.arange(3).repeat_interleave(2)
    ep = Episode(shots.flatten(0, 1), labels, shots[:, 0], torch.arange(3), ("a", "b", "c"))
    images, targets = GanArm(gan, adv, spec, steps, per_class)(ep, torch.Generator().manual_seed(5))
    assert images.shape == (6 + 3 * per_class, 1, 16, 16)
    assert torch.equal(images[:6], ep.support)
    assert targets[6:].argmax(1).tolist() == [0] * 4 + [1] * 4 + [2] * 4

    rng = torch.Generator().manual_seed(5)
    z = torch.randn(3, per_class, 8, generator=rng)
    pair = Pair(gan.generator, gan.discriminator, adv)
    noises = [draw_noise(pair, steps, 2, 16, rng) for _ in range(3)]
    g0, d0 = parameters(gan.generator), parameters(gan.discriminator)
    for c in range(3):
        g, *_ = inner_loop(pair, InnerOptimizer(spec), g0, d0, shots[c], noises[c])
        cond = {"dcgan": None, "conditional": torch.zeros(per_class, dtype=torch.long),
                "dagan": shots[c][torch.arange(per_class) % 2]}[kind]  # fmt: skip
        expected = pair.g(g, z[c], cond).detach().clamp(-1, 1)
        got = images[6 + c * per_class : 6 + (c + 1) * per_class]
        torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5)


def test_gan_arm_without_adaptation_samples_the_initialization() -> None:
    gan = _gans()["dagan"]
    shots = torch.rand(2, 1, 1, 16, 16) * 2 - 1  # one shot per class: no pairs, no adaptation
    arm = GanArm(gan, Adversarial(), OptimizerSpec(), steps=0, per_class=3)
    fakes = arm.synthesize(shots, torch.Generator().manual_seed(2))
    z = torch.randn(2, 3, 8, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        for c in range(2):
            expected = gan.generator(z[c], shots[c].expand(3, -1, -1, -1)).clamp(-1, 1)
            torch.testing.assert_close(fakes[c], expected)


def test_a_digest_names_the_weights_an_arm_holds_and_nothing_else() -> None:
    """The journal's check on a resumed run: the same weights give the same digest, one weight
    moved by 1e-6 another; an arm its config alone defines has none."""
    arm = GanArm(_gans()["dagan"], Adversarial(), OptimizerSpec(), steps=0, per_class=3)
    same = GanArm(_gans()["dagan"], Adversarial(), OptimizerSpec(), steps=0, per_class=3)
    assert digest(arm) == digest(same) and len(digest(arm)) == 16
    with torch.no_grad():
        next(iter(same.g0.values())).add_(1e-6)
    assert digest(arm) != digest(same)
    assert digest(NoAugment()) is None and digest(SupportCNN(steps=1)) is None


# --- learners ---------------------------------------------------------------------------------


def _image(rows: slice, cols: slice | int) -> Tensor:
    image = -torch.ones(1, 1, 16, 16)
    image[0, 0, rows, cols] = 1
    return image


def test_classic_augmentation_supplies_a_missing_invariance() -> None:
    """Class "bar" is a vertical bar at the left in the support but at the right (its mirror
    image) in the query; class "dash" is a short dash, its own mirror image. On raw pixels the
    mirrored bar is nearer the dash than the support's bar, so without augmentation every bar
    query is wrong; mirrored copies (hflip) put the bar's prototype between both places."""
    bar, mirrored, dash = _image(slice(4, 12), 3), _image(slice(4, 12), 12), _image(8, slice(6, 10))
    support = torch.cat([bar, bar, dash, dash])
    labels = torch.tensor([0, 0, 1, 1])
    query = torch.cat([mirrored, mirrored, dash, dash])
    ep = Episode(support, labels, query, labels, ("bar", "dash"))
    pixels = Prototypes(lambda x: (x.flatten(1), None))
    flip = ClassicArm(ClassicAugment(rotate=0, translate=0, scale=0, hflip=0.5), copies=20)
    scores = {}
    for arm in (NoAugment(), flip):
        images, targets = arm(ep, torch.Generator().manual_seed(0))
        scores[arm.name] = pixels.accuracy(images, targets, ep.query, ep.query_labels, None)
    assert scores == {"none": 0.5, "classic": 1.0}


def test_support_cnn_learns_a_separable_problem_and_is_seeded() -> None:
    gen = torch.Generator().manual_seed(0)
    dark = torch.rand(10, 1, 8, 8, generator=gen) * 0.5 - 1
    bright = torch.rand(10, 1, 8, 8, generator=gen) * 0.5 + 0.5
    x, y = torch.cat([dark[:5], bright[:5]]), torch.tensor([0] * 5 + [1] * 5)
    q, qy = torch.cat([dark[5:], bright[5:]]), y
    cnn = SupportCNN(steps=30, lr=0.01, width=4)
    targets = torch.nn.functional.one_hot(y, 2).float()
    acc = cnn.accuracy(x, targets, q, qy, torch.Generator().manual_seed(1))
    assert acc == 1.0


def _digit_samplers(ways: int, shots: int, queries: int):
    from metaaug.data.sources import digits
    from metaaug.data.split import split_classes

    classes = digits(image_size=8, channels=1)
    split = split_classes(sorted(classes), 0.0, 0.5, 0)
    return (EpisodeSampler(classes, split.train, ways, shots, queries, 1, split="meta-train"),
            EpisodeSampler(classes, split.test, ways, shots, queries, 0))  # fmt: skip


def test_maml_initialization_beats_its_random_start_on_held_out_classes() -> None:
    train, test = _digit_samplers(3, 2, 5)
    scores = []
    for iterations in (0, 40):
        learner = meta_train_maml_classifier(train, 1, 8, 4, iterations, 2, 3, 0.1, 3e-3,
                                             first_order=False, seed=0)  # fmt: skip
        accs = []
        for ep in map(test.episode, range(50)):
            targets = torch.nn.functional.one_hot(ep.support_labels, 3).float()
            accs.append(learner.accuracy(ep.support, targets, ep.query, ep.query_labels, None))
        scores.append(np.mean(accs))
    assert scores[1] > scores[0] + 0.1, scores


def test_a_non_finite_meta_step_leaves_the_magnitudes_finite(monkeypatch) -> None:
    """An episode whose unrolled fit blows up moves nothing: the magnitudes stay those of the
    other steps (a NaN step once made every learned image NaN: accuracy at chance)."""
    import metaaug.fewshot.learned as learned

    train, _ = _digit_samplers(3, 2, 5)
    start = {"rotate": 10.0, "translate": 0.1, "noise": 0.05}
    kwargs = dict(start=start, copies=2, iterations=3, inner_steps=2, inner_lr=0.5,
                  meta_lr=0.05, width=4, seed=0)  # fmt: skip
    clean, skipped = learned.meta_learn_augment(train, **kwargs)
    assert skipped == 0
    real, calls = learned.query_loss, []

    def blows_up_last(*args, **kw) -> Tensor:
        calls.append(1)
        loss = real(*args, **kw)
        return loss * float("nan") if len(calls) == 3 else loss

    monkeypatch.setattr(learned, "query_loss", blows_up_last)
    guarded, skipped = learned.meta_learn_augment(train, **kwargs)
    assert skipped == 1
    two = dict(kwargs, iterations=2)
    monkeypatch.setattr(learned, "query_loss", real)
    first_two, _ = learned.meta_learn_augment(train, **two)
    assert torch.equal(guarded.raw, first_two.raw)  # the third step changed nothing
    assert not torch.equal(guarded.raw, clean.raw)


def test_learned_magnitudes_move_to_lower_the_query_loss() -> None:
    """One meta-gradient step on the magnitudes lowers the query loss of the CNN trained on
    the augmented support (same episode, initialization and random draws)."""
    train, _ = _digit_samplers(3, 2, 5)
    episode = train.episode(0)
    torch.manual_seed(0)
    net = small_cnn(1, 8, 3, 4)
    init = {k: v.detach().requires_grad_(True) for k, v in net.named_parameters()}
    augment = LearnedAugment(rotate=30.0, translate=0.2, noise=0.3)

    def loss() -> Tensor:
        rng = torch.Generator().manual_seed(3)
        return query_loss(augment, net, init, episode, 2, 5, 0.5, rng)

    before = loss()
    (grad,) = torch.autograd.grad(before, [augment.raw])
    assert (grad != 0).all()  # every magnitude reaches the query loss
    with torch.no_grad():
        augment.raw -= 0.05 * grad / grad.norm()
    assert loss() < before


# --- the command ------------------------------------------------------------------------------

QUICK = ["fewshot.episodes=4", "fewshot.queries=3", "learners.plain.steps=3",
         "learners.maml.iterations=2", "learners.maml.test_steps=2",
         "arms.learned.iterations=2", "arms.learned.inner_steps=2",
         "metric.epochs=1", "metric.min_steps=0"]  # fmt: skip


def test_fewshot_writes_its_table_csv_and_report(metaaug: Runner, tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    every = ["fewshot.learners=[protonet,plain,maml]", "fewshot.arms=[none,classic,mixup,learned]"]
    proc = metaaug("fewshot", *QUICK, *every, f"hydra.run.dir={run_dir}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads((run_dir / "fewshot.json").read_text())
    assert not set(report["classes"]["train"]) & set(report["classes"]["test"])
    with open(run_dir / "fewshot.csv") as f:
        rows = list(csv.DictReader(f))
    assert {(r["learner"], r["arm"]) for r in rows} == {
        (ln, a)
        for ln in ("protonet", "plain", "maml")
        for a in ("none", "classic", "mixup", "learned")
    }
    for r in rows:
        per_episode = report["per_episode"][r["learner"]][r["arm"]]
        assert len(per_episode) == 4
        assert float(r["accuracy"]) == pytest.approx(np.mean(per_episode))
        assert (r["diff"] == "") == (r["arm"] == "none")
    table = (run_dir / "fewshot.md").read_text()
    assert "5-way 5-shot on digits" in table and table.count("| plain |") == 4
    # the objective defaults to the first learner with the last arm
    assert (report["objective"]["learner"], report["objective"]["arm"]) == ("protonet", "learned")
    assert report["objective"]["accuracy"] == pytest.approx(
        np.mean(report["per_episode"]["protonet"]["learned"])
    )
    assert any(p.name.startswith("events") for p in (run_dir / "tensorboard").iterdir())


def test_the_report_is_strict_json_with_what_could_not_be_measured_as_null(
    tmp_path: Path,
) -> None:
    """A figure that could not be measured (a p-value of fewer than 2 pairs) is NaN in a row:
    fewshot.json holds null there (strict JSON a reader of any language parses), written
    atomically like metrics.json."""
    from metaaug.fewshot.report import write

    row = {"learner": "plain", "arm": "classic", "accuracy": 0.5, "diff": 0.0,
           "p_value": float("nan")}  # fmt: skip
    write(tmp_path, [row], "table\n", {"rows": [row], "objective": {"accuracy": 0.5},
                                       "seconds": 1.0}, {"seed": 0})  # fmt: skip

    def refuse(constant: str) -> None:
        raise ValueError(f"{constant} in fewshot.json")

    report = json.loads((tmp_path / "fewshot.json").read_text(), parse_constant=refuse)
    assert report["rows"][0]["p_value"] is None and report["rows"][0]["accuracy"] == 0.5


def test_a_stopped_fewshot_run_says_how_to_go_on_and_is_taken_up(
    metaaug: Runner, refused: Runner, metric_cache: Path, tmp_path: Path
) -> None:
    """SIGTERM while the episodes are scored: exit 143, one line naming the journal and the
    `resume=` that goes on; the run given it scores only the episodes not yet scored (and more
    of them: fewshot.episodes may change), and one defined otherwise is refused."""
    stopped, again = tmp_path / "stopped", tmp_path / "again"
    quick = [*QUICK, "fewshot.learners=[protonet,plain]", "fewshot.arms=[none,classic]"]
    env = {**os.environ, "METAAUG_CACHE": str(metric_cache), "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "metaaug.cli", "fewshot", *quick, "fewshot.episodes=100000",
         f"hydra.run.dir={stopped}"],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    path, deadline = stopped / journal.FILE, time.time() + 300
    while (not path.is_file() or path.read_text().count("\n") < 4) and time.time() < deadline:
        time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 128 + signal.SIGTERM, stderr[-3000:]
    lines = [ln for ln in stderr.splitlines() if ln.startswith("metaaug: interrupted:")]
    assert len(lines) == 1 and "Traceback" not in stderr, stderr[-3000:]
    assert f"are kept in {path}; continue with resume={stopped}" in lines[0]
    assert not (stopped / "fewshot.json").exists()
    _, taken = journal.read(path)
    count = len(taken["episodes"])
    assert count >= 3 and sorted(taken["episodes"]) == list(range(count))

    done = metaaug("fewshot", *quick, f"fewshot.episodes={count + 2}", f"resume={stopped}",
                   f"hydra.run.dir={again}")  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"took up {count} scored episode(s)" in (again / "fewshot.log").read_text()
    per_episode = json.loads((again / "fewshot.json").read_text())["per_episode"]
    for i, (acc, _) in taken["episodes"].items():
        for learner, arms in acc.items():
            for arm, value in arms.items():
                assert per_episode[learner][arm][i] == value
    assert len(per_episode["plain"]["none"]) == count + 2

    other = refused("fewshot", *quick, "fewshot.shots=3", f"resume={stopped}")
    assert other.returncode == 2 and "Traceback" not in other.stderr
    assert "scored its episodes with other settings (fewshot.shots: 5 -> 3)" in other.stderr
    nothing = refused("fewshot", *quick, f"resume={tmp_path}")
    assert nothing.returncode == 2 and f"holds no {journal.FILE}" in nothing.stderr


def _train_on_fewshot_split(metaaug: Runner, tmp_path: Path, *extra: str) -> Path:
    """A tiny `metaaug train` run on fewshot's class split; returns its run directory."""
    train_dir = tmp_path / "train"
    proc = metaaug(
        "train", *TINY, "dataset.val_fraction=0", "dataset.test_fraction=0.5",
        "compare_baselines=false", "validation.every=0", "gan.width=4", *extra,
        f"hydra.run.dir={train_dir}",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    return train_dir


def test_gan_arm_uses_a_train_checkpoint_and_refuses_one_that_saw_the_episode_classes(
    metaaug: Runner, refused: Runner, tmp_path: Path
) -> None:
    checkpoint = _train_on_fewshot_split(metaaug, tmp_path) / "checkpoints" / "meta_init.pt"
    gan = [*QUICK, "fewshot.arms=[none,gan]", "fewshot.learners=[plain]", "arms.gan.per_class=2",
           "arms.gan.steps=1"]  # fmt: skip

    run_dir = tmp_path / "fewshot"
    proc = metaaug("fewshot", *gan, f"arms.gan.checkpoint={checkpoint}", f"hydra.run.dir={run_dir}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads((run_dir / "fewshot.json").read_text())
    assert [(r["learner"], r["arm"]) for r in report["rows"]] == [
        ("plain", "none"),
        ("plain", "gan"),
    ]
    assert report["objective"]["arm"] == "gan"

    # its episodes are taken up while the GAN is the one that scored them, wherever it now
    # lies, and refused once a GAN trained again is saved there: two models' episodes
    moved = tmp_path / "moved" / "meta_init.pt"
    save_atomic(load(checkpoint), moved)
    again = metaaug("fewshot", *gan, f"arms.gan.checkpoint={moved}", f"resume={run_dir}",
                    f"hydra.run.dir={tmp_path / 'again'}")  # fmt: skip
    assert again.returncode == 0, again.stderr[-3000:]
    assert "took up 4 scored episode(s)" in (tmp_path / "again" / "fewshot.log").read_text()
    retrained = load(checkpoint)
    name = next(k for k in retrained["gan"] if k.endswith("weight"))
    retrained["gan"][name] = retrained["gan"][name] + 1e-6
    save_atomic(retrained, checkpoint)
    proc = refused("fewshot", *gan, f"arms.gan.checkpoint={checkpoint}", f"resume={run_dir}")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert f"resume='{run_dir}' scored its episodes with other weights in arms.gan " in proc.stderr

    # a GAN that was meta-trained on an episode class must not be used on it
    leaky = load(checkpoint)
    leaky["classes"]["train"].append(report["classes"]["test"][0])
    save_atomic(leaky, tmp_path / "leaky.pt")
    proc = refused("fewshot", *gan, f"arms.gan.checkpoint={tmp_path / 'leaky.pt'}")
    assert proc.returncode == 2 and "1 of the episode classes" in proc.stderr, proc.stderr[-2000:]
    assert "dataset.test_fraction=0.5" in proc.stderr and "Traceback" not in proc.stderr
    proc = refused("fewshot", *QUICK, "fewshot.arms=[none,gan]")
    assert proc.returncode == 2 and "arms.gan.checkpoint" in proc.stderr
    (tmp_path / "corrupt.pt").write_bytes(b"not a checkpoint")
    proc = refused("fewshot", *gan, f"arms.gan.checkpoint={tmp_path / 'corrupt.pt'}")
    assert proc.returncode == 2 and "damaged or not a metaaug checkpoint" in proc.stderr, (
        proc.stderr[-2000:]
    )
    assert "Traceback" not in proc.stderr


def test_synthetic_arm_uses_train_s_folder_with_its_shots_as_the_support(
    metaaug: Runner, refused: Runner, tmp_path: Path
) -> None:
    train_dir = _train_on_fewshot_split(metaaug, tmp_path, "target.shots=3", "target.classes=2")
    manifest = json.loads((train_dir / "synthetic" / "manifest.json").read_text())
    assert len(manifest["classes"]) == 2
    # the recorded rows of each class are the shots its GAN was fine-tuned on
    from metaaug.data.sources import digits

    for entry in manifest["classes"]:
        shots = load(train_dir / "checkpoints" / "finetuned" / f"{entry['folder']}.pt")["shots"]
        class_images = digits(image_size=16, channels=1)[entry["class_name"]]
        torch.testing.assert_close(class_images[entry["shot_rows"]], shots)

    synthetic = [*QUICK, "fewshot.arms=[none,synthetic]", "fewshot.learners=[plain]",
                 f"fewshot.synthetic_path={tmp_path}", "arms.synthetic.per_class=4"]  # fmt: skip
    run_dir = tmp_path / "fewshot"
    proc = metaaug("fewshot", *synthetic, "fewshot.shots=3", f"hydra.run.dir={run_dir}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = json.loads((run_dir / "fewshot.json").read_text())["rows"]
    assert [r["arm"] for r in rows] == ["none", "synthetic"]
    assert "images of 2 meta-test classes" in (run_dir / "fewshot.log").read_text()

    proc = refused("fewshot", *synthetic, "fewshot.shots=2")
    assert proc.returncode == 2 and "set fewshot.shots=3" in proc.stderr, proc.stderr[-2000:]
    manifest["meta_train_classes"].append(manifest["classes"][0]["class_name"])
    (train_dir / "synthetic" / "manifest.json").write_text(json.dumps(manifest))
    proc = refused("fewshot", *synthetic, "fewshot.shots=3")
    assert proc.returncode == 2 and "meta-trained on 1 of the episode classes" in proc.stderr
    for damaged in ('{"complete": tr', "[]"):  # cut short, or not an object: one line
        (train_dir / "synthetic" / "manifest.json").write_text(damaged)
        proc = refused("fewshot", *synthetic, "fewshot.shots=3")
        assert_one_line_error(proc, "is damaged or not a metaaug manifest", "metaaug train")
    (train_dir / "synthetic" / "manifest.json").write_text(json.dumps(manifest | {"classes": None}))
    proc = refused("fewshot", *synthetic, "fewshot.shots=3")
    assert_one_line_error(proc, "lacks a list under classes", "metaaug train")


@pytest.mark.parametrize(
    ("override", "fragment"),
    [("fewshot.ways=9", "fewshot.ways=9 but the meta-test split has 5"),
     ("fewshot.queries=500", "fewshot.shots or fewshot.queries"),
     ("fewshot.arms=[none,nosuch]", "nosuch"),
     ("fewshot.arms=[none,classic+mixup,classic]", "each also listed on its own (missing: mixup)"),
     ("fewshot.objective.arm=gan", "fewshot.objective"),
     ("fewshot.workers=0", "fewshot.workers=0: use 1")],
)  # fmt: skip
def test_fewshot_bad_input_is_one_line(refused: Runner, override: str, fragment: str) -> None:
    proc = refused("fewshot", *QUICK, override)
    assert proc.returncode == 2, proc.stderr[-2000:]
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("metaaug: error:")]
    assert len(errors) == 1 and fragment in errors[0], proc.stderr
    assert "Traceback" not in proc.stderr


def test_an_arm_of_its_own_is_a_config_node(metaaug: Runner, tmp_path: Path) -> None:
    """An arm that needs no context is its `arms.<name>` node alone (config/fewshot_registry.py):
    here `none` again under another name, which must tie with `none` on every episode."""
    run_dir = tmp_path / "run"
    proc = metaaug("fewshot", *QUICK, "+arms.again={_target_:metaaug.fewshot.arms.NoAugment}",
                   "fewshot.arms=[none,again]", "fewshot.learners=[plain]",
                   f"hydra.run.dir={run_dir}")  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = json.loads((run_dir / "fewshot.json").read_text())["rows"]
    assert [r["arm"] for r in rows] == ["none", "again"]
    assert rows[1]["diff"] == 0.0


@pytest.mark.parametrize(
    ("arms", "source", "arm"),
    [(["fewshot.arms=[none,classic]"], "arms.gan.checkpoint=/nonexistent/meta_init.pt", "gan"),
     ([], "arms.gan.checkpoint=/nonexistent/meta_init.pt", "gan"),  # the default arms
     (["fewshot.arms=[none,classic]"], "fewshot.synthetic_path=/nonexistent/synthetic",
      "synthetic")],
)  # fmt: skip
def test_a_gan_or_synthetic_source_without_its_arm_is_refused(
    refused: Runner, arms: list[str], source: str, arm: str
) -> None:
    """Set without its arm, the path was read by nothing (a missing one too) and
    the report showed no GAN as if it had scored one."""
    listed = "none,classic" if arms else "none,classic,mixup"
    key = source.split("=")[0]
    proc = refused("fewshot", *QUICK, *arms, source)
    shown = listed.replace(",", ", ")
    assert_one_line_error(proc, f"{key} is set but fewshot.arms=[{shown}] has no {arm} arm",
                          f"add it: 'fewshot.arms=[{listed},{arm}]'")  # fmt: skip
