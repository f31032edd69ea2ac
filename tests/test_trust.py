"""Filtered and weighted synthetic images (`metaaug.fewshot.trust`): what the judge keeps,
what a weight does to each learner's loss and prototypes, and what the report says."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from metaaug.fewshot.arms import NoAugment, one_hot
from metaaug.fewshot.episodes import Episode
from metaaug.fewshot.learners import Prototypes, soft_cross_entropy
from metaaug.fewshot.report import markdown, summarize
from metaaug.fewshot.scoring import Schedule, score
from metaaug.fewshot.trust import ClassJudge, PrototypeJudge, Trusted, View


class Pixels:
    """Features = the pixels themselves: a judge whose answer can be worked out by hand."""

    def __call__(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return images.flatten(1).float(), torch.zeros(len(images), 1)


def _episode() -> Episode:
    # two classes, two shots each: class 0 bright on the left, class 1 on the right
    left, right = torch.zeros(1, 2, 2), torch.zeros(1, 2, 2)
    left[..., 0], right[..., 1] = 1.0, 1.0
    support = torch.stack([left, left * 0.9, right, right * 0.8])
    return Episode(support, torch.tensor([0, 0, 1, 1]), support.clone(), torch.tensor([0, 0, 1, 1]),
                   ("a", "b"))  # fmt: skip


class Fixed:
    """An arm adding two images per class: one of its class, one of the other's."""

    name = "gan"

    def __call__(self, episode: Episode, rng: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        s = episode.support
        made = torch.stack([s[0], s[2], s[2], s[0]])  # labelled 0, 0, 1, 1: rows 1 and 3 wrong
        labels = torch.tensor([0, 0, 1, 1])
        return torch.cat([s, made]), torch.cat([one_hot(episode.support_labels, 2),
                                                one_hot(labels, 2)])  # fmt: skip


def test_the_filter_keeps_what_the_support_prototypes_assign_to_its_class() -> None:
    episode = _episode()
    arm = Trusted(Fixed(), judge=PrototypeJudge(Pixels()))  # type: ignore[arg-type]
    images, targets = arm(episode, torch.Generator())
    assert arm.kept == 0.5
    assert images.shape[0] == 4 + 2
    # by hand: made = [s0, s2, s2, s0] labelled [0, 0, 1, 1]; the nearest support prototypes
    # are [0, 1, 1, 0], so rows 0 and 2 are kept
    torch.testing.assert_close(images[4:], torch.stack([episode.support[0], episode.support[2]]))
    assert targets[4:].argmax(1).tolist() == [0, 1]


def test_generate_s_judge_keeps_what_lies_nearest_its_own_shots() -> None:
    """`generate filter=true`: a class's images against its shots, the other classes drawn
    and the run's meta-train classes (cosine to the direction of each set's mean)."""

    def image(x: float, y: float) -> torch.Tensor:
        return torch.tensor([[[x, y]]])  # [1, 1, 2]: a 2-d feature under Pixels

    known = [torch.stack([image(-1, 0.1), image(-1, -0.1)])]  # a meta-train class: left
    judge = ClassJudge(Pixels(), known)  # type: ignore[arg-type]
    shots = {"mine": torch.stack([image(1, 0.2), image(1, -0.2)]),  # right
             "theirs": torch.stack([image(0.1, 1), image(-0.1, 1)])}  # up  # fmt: skip
    drawn = torch.stack([image(2, 0.5), image(0.2, 1), image(-1, 0.3), image(1, 0.9)])
    # by hand: cosines of (1, 0.9) with right 0.74, up 0.67 -> mine; the 2nd is up, the 3rd left
    assert judge.keeps(drawn, shots, "mine").tolist() == [True, False, False, True]
    assert judge.keeps(drawn, shots, "theirs").tolist() == [False, True, False, False]
    sets = {"mine": drawn, "theirs": drawn[2:3]}
    record = judge.cut(sets, shots)
    assert record["drawn"] == {"mine": 4, "theirs": 1}
    assert record["kept"] == {"mine": 0.5, "theirs": 0.0}
    assert list(sets) == ["mine"]  # a class with nothing kept is dropped
    torch.testing.assert_close(sets["mine"], drawn[[0, 3]])


def test_weight_scales_the_generated_rows_only() -> None:
    episode = _episode()
    images, targets = Trusted(Fixed(), weight=0.25)(episode, torch.Generator())
    assert targets[:4].sum(1).tolist() == [1.0] * 4
    assert targets[4:].sum(1).tolist() == [0.25] * 4
    assert images.shape[0] == 8


def test_a_weighted_loss_counts_each_row_by_its_mass() -> None:
    logits = torch.randn(6, 3, generator=torch.Generator().manual_seed(0))
    labels = torch.tensor([0, 1, 2, 0, 1, 2])
    targets = F.one_hot(labels, 3).float()
    per_row = F.cross_entropy(logits, labels, reduction="none")
    # unit rows: the plain mean, to the bit
    assert torch.equal(soft_cross_entropy(logits, targets), per_row.mean())
    w = torch.tensor([1, 1, 1, 0.5, 0.5, 0.0])
    expected = (per_row * w).sum() / w.sum()
    assert soft_cross_entropy(logits, targets * w[:, None]).item() == pytest.approx(expected.item())
    # weight 0: the generated rows do not count at all
    zero = soft_cross_entropy(logits, targets * torch.tensor([1, 1, 1, 0, 0, 0.0])[:, None])
    assert zero.item() == pytest.approx(per_row[:3].mean().item())


def _basis(i: int) -> torch.Tensor:
    x = torch.zeros(1, 2, 2)
    x.view(-1)[i] = 1.0
    return x


class Third:
    """An arm adding three images of a third kind (pixel 2) under class 0's label."""

    name = "gan"

    def __call__(self, episode: Episode, rng: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        made = torch.stack([_basis(2)] * 3)
        return torch.cat([episode.support, made]), torch.cat(
            [one_hot(episode.support_labels, 2), one_hot(torch.zeros(3, dtype=torch.long), 2)]
        )


def test_protonet_at_weight_zero_keeps_the_mean_of_the_real_shots() -> None:
    support = torch.stack([_basis(0), _basis(0) * 0.9, _basis(1), _basis(1) * 0.8])
    labels = torch.tensor([0, 0, 1, 1])
    episode = Episode(support, labels, support, labels, ("a", "b"))
    learner = Prototypes(Pixels())  # type: ignore[arg-type]
    # a class-0 query a little nearer pixel 0 than pixel 1: by hand, the real prototypes are
    # e0 and e1 (cosines 0.6 and 0.5); with the three generated images class 0's prototype
    # is (2 e0 + 3 e2) / sqrt(13), whose cosine 0.6 * 2 / sqrt(13) = 0.33 loses to 0.5
    query = (0.6 * _basis(0) + 0.5 * _basis(1)).unsqueeze(0)
    truth = torch.tensor([0])
    rng = torch.Generator()
    real = learner.accuracy(support, one_hot(labels, 2), query, truth, rng)
    images, targets = Trusted(Third(), weight=0.0)(episode, rng)
    assert learner.accuracy(images, targets, query, truth, rng) == real == 1.0
    images, targets = Trusted(Third(), weight=1.0)(episode, rng)
    assert learner.accuracy(images, targets, query, truth, rng) == 0.0


class Count:
    name = "count"

    def accuracy(self, images, targets, query, labels, rng) -> float:  # type: ignore[no-untyped-def]
        return float(len(images))


class Sampler:
    def episode(self, i: int) -> Episode:
        return _episode()


def test_the_report_says_what_share_each_filter_kept() -> None:
    arms = {"none": NoAugment(), "gan": Trusted(Fixed(), judge=PrototypeJudge(Pixels()))}  # type: ignore[arg-type]
    acc, kept = score(Sampler(), arms, {"count": Count()}, Schedule(episodes=3, seed=0))  # type: ignore[arg-type]
    assert acc["count"]["gan"].tolist() == [6.0] * 3
    assert list(kept) == ["gan"] and kept["gan"].tolist() == [0.5] * 3
    rows = summarize(acc, 0.95, kept)
    assert [r["kept"] for r in rows] == [None, 0.5]
    text = markdown(rows, "t", 1, 0, 0.95, kept)
    assert "The filter of `gan` kept 50.0% of its generated images" in text
    assert summarize(acc, 0.95)[1]["kept"] is None  # no filter, no share


def test_a_view_filters_the_very_images_its_arm_made() -> None:
    calls = []

    class Counted(Fixed):
        def __call__(self, episode, rng):  # type: ignore[no-untyped-def]
            calls.append(1)
            return super().__call__(episode, rng)

    arms = {"none": NoAugment(), "gan": Counted(),
            "gan_filtered": View("gan_filtered", "gan", 0.5, PrototypeJudge(Pixels()))}  # type: ignore[arg-type]  # fmt: skip
    acc, kept = score(Sampler(), arms, {"count": Count()}, Schedule(episodes=2, seed=0))  # type: ignore[arg-type]
    assert len(calls) == 2  # the gan arm made its images once an episode, for both rows
    assert acc["count"]["gan"].tolist() == [8.0] * 2
    assert acc["count"]["gan_filtered"].tolist() == [6.0] * 2
    assert list(kept) == ["gan_filtered"] and kept["gan_filtered"].tolist() == [0.5] * 2
    with pytest.raises(TypeError, match="views arm gan"):
        arms["gan_filtered"](_episode(), torch.Generator())
