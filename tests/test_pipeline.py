"""The train pipeline's pure stages: targets from the config's forms, mean ± sd over targets."""

from __future__ import annotations

import math
import statistics
from pathlib import Path

import pytest
import torch
from PIL import Image

from metaaug.data.split import ClassSplit
from metaaug.data.target import path_targets, target_names
from metaaug.errors import UserError
from metaaug.pipeline.measure import across

SPLIT = ClassSplit(train=("a", "b"), val=("c",), test=("d", "e", "f"))


@pytest.mark.parametrize(
    ("class_name", "many", "names"),
    [(None, None, ["d"]), ("f", None, ["f"]), (None, 2, ["d", "f"]), (None, "2", ["d", "f"]),
     (None, "all", ["d", "e", "f"]), (None, ["f", 9], ["f", "9"])],
)  # fmt: skip
def test_target_names_from_each_form_of_the_config(class_name, many, names) -> None:
    # a count is a seeded sample (seed 0 draws d and f of d, e, f), listed in sorted order
    assert target_names(SPLIT, class_name=class_name, many=many, seed=0) == names


def test_a_count_of_targets_is_a_seeded_sample_of_the_meta_test_classes() -> None:
    split = ClassSplit(train=("a",), val=("b",), test=tuple(f"t{i:02d}" for i in range(30)))
    drawn = {seed: target_names(split, class_name=None, many=10, seed=seed) for seed in range(4)}
    for names in drawn.values():
        assert len(names) == len(set(names)) == 10
        assert set(names) <= set(split.test) and names == sorted(names)
    # the same seed gives the same sample (every arm of a run, a rerun); seeds differ
    assert target_names(split, class_name=None, many=10, seed=2) == drawn[2]
    assert len({tuple(n) for n in drawn.values()}) == 4
    # not the first ten: over 4 seeds the sample reaches past them
    assert any(name not in split.test[:10] for names in drawn.values() for name in names)


def test_mean_and_sd_over_targets_leave_out_unavailable_values() -> None:
    per_target = [
        {"gan": {"fid": 1.0, "fidelity": 0.5}, "copy": {"fid": 0.0}},
        {"gan": {"fid": 3.0, "fidelity": math.nan}, "copy": {"fid": 2.0}},
        {"gan": {"fid": 8.0, "fidelity": 0.7}},
    ]
    mean, sd = across(per_target)
    assert list(mean) == ["gan", "copy"]
    assert mean["gan"]["fid"] == pytest.approx(4.0)
    assert sd["gan"]["fid"] == pytest.approx(statistics.stdev([1.0, 3.0, 8.0]))
    assert mean["gan"]["fidelity"] == pytest.approx(0.6)  # the nan target is left out
    assert sd["gan"]["fidelity"] == pytest.approx(statistics.stdev([0.5, 0.7]))
    assert (mean["copy"]["fid"], sd["copy"]["fid"]) == pytest.approx((1.0, math.sqrt(2)))
    one, spread = across([{"gan": {"fid": 2.0, "is": math.nan}}])
    assert one["gan"]["fid"] == 2.0 and spread["gan"]["fid"] == 0.0
    assert math.isnan(one["gan"]["is"]) and math.isnan(spread["gan"]["is"])


def _png(path: Path, value: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("L", (8, 8), value).save(path)


def test_a_folder_of_class_folders_is_one_target_per_folder(tmp_path: Path) -> None:
    for i in range(6):
        _png(tmp_path / "mine" / "dent" / f"{i}.png", 10 * i)
        _png(tmp_path / "mine" / "crack" / f"{i}.png", 200)
    (tmp_path / "mine" / "empty").mkdir()  # a folder without images is no class
    kw = {"shots": 4, "seed": 0, "image_size": 8, "channels": 1}
    targets = path_targets(str(tmp_path / "mine"), class_name=None, **kw)
    assert [t.class_name for t in targets] == ["crack", "dent"]
    assert [(len(t.shots), len(t.heldout)) for t in targets] == [(4, 2), (4, 2)]
    assert torch.all(targets[0].shots == targets[0].shots[0, 0, 0, 0])  # crack: all one value
    with pytest.raises(UserError, match=r"holds class folders.*drop it"):
        path_targets(str(tmp_path / "mine"), class_name="x", **kw)
    flat = path_targets(str(tmp_path / "mine" / "dent"), class_name=None, **kw)
    assert [t.class_name for t in flat] == ["dent"]
