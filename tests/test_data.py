"""Data package: loaders meet the image convention, splits never leak, errors tell the fix."""

from __future__ import annotations

import logging
import zipfile
from pathlib import Path

import pytest
import torch
from PIL import Image

from metaaug.data import (
    ClassSplit,
    TaskSampler,
    digits,
    fashion_mnist,
    image_folder_flat,
    imagefolder,
    mnist,
    omniglot,
    select_targets,
    split_classes,
)
from metaaug.errors import UserError

REPO = Path(__file__).resolve().parents[1]
OMNIGLOT = REPO.parent / "shared" / "data" / "omniglot"
SMALL1 = OMNIGLOT / "images_background_small1.zip"


def png(path: Path, value: int | tuple[int, int, int], size: int = 12) -> Path:
    """A uniform PNG: grayscale when `value` is an int, RGB when it is a triple."""
    path.parent.mkdir(parents=True, exist_ok=True)
    mode = "L" if isinstance(value, int) else "RGB"
    Image.new(mode, (size, size), value).save(path)
    return path


def numbered_classes(n_classes: int, n_images: int, size: int = 4) -> dict[str, torch.Tensor]:
    """Classes whose every image is constant and unique (value = class * 1000 + row)."""
    return {
        f"c{c:02d}": torch.arange(n_images, dtype=torch.float32)
        .add(c * 1000)
        .view(n_images, 1, 1, 1)
        .expand(n_images, 1, size, size)
        .clone()
        for c in range(n_classes)
    }


# --- class split -----------------------------------------------------------------------------

NAMES = [f"class{i:02d}" for i in range(20)]


def test_split_is_disjoint_covers_all_and_sized_by_fractions() -> None:
    split = split_classes(NAMES, val_fraction=0.2, test_fraction=0.25, seed=0)
    assert (len(split.train), len(split.val), len(split.test)) == (11, 4, 5)
    parts = [set(split.train), set(split.val), set(split.test)]
    assert set.union(*parts) == set(NAMES)
    assert sum(len(p) for p in parts) == len(NAMES)
    for part in (split.train, split.val, split.test):
        assert list(part) == sorted(part)


def test_split_is_deterministic_and_independent_of_input_order() -> None:
    first = split_classes(NAMES, 0.2, 0.2, seed=7)
    assert split_classes(NAMES, 0.2, 0.2, seed=7) == first
    assert split_classes(list(reversed(NAMES)), 0.2, 0.2, seed=7) == first
    assert split_classes(NAMES, 0.2, 0.2, seed=8).test != first.test


def test_named_targets_are_held_out_before_the_split() -> None:
    plain = split_classes(NAMES, 0.2, 0.25, seed=0)
    assert split_classes(NAMES, 0.2, 0.25, seed=0, held_out=()) == plain
    # naming classes the split holds out anyway leaves the split as it is
    assert split_classes(NAMES, 0.2, 0.25, seed=0, held_out=plain.test[1:3]) == plain
    trained = plain.train[:2]
    split = split_classes(NAMES, 0.2, 0.25, seed=0, held_out=trained)
    assert set(trained) <= set(split.test)
    assert (len(split.train), len(split.val), len(split.test)) == (11, 4, 5)
    assert set(split.train) | set(split.val) | set(split.test) == set(NAMES)
    many = split_classes(NAMES, 0.2, 0.25, seed=0, held_out=NAMES[:8])
    assert set(many.test) == set(NAMES[:8]) and len(many.val) == 4
    with pytest.raises(UserError, match="leave fewer than 2"):
        split_classes(NAMES, 0.2, 0.25, seed=0, held_out=NAMES[:19])
    for by, names in (("class", NAMES), ("group", GROUPED)):
        with pytest.raises(UserError, match=r"held-out classes \['nope'\] are not classes of"):
            split_classes(names, 0.2, 0.25, seed=0, held_out=[names[0], "nope"], by=by)


def test_split_gives_every_requested_part_a_class_and_needs_three() -> None:
    tiny = split_classes(["a", "b", "c"], 0.01, 0.01, seed=0)
    assert tiny == split_classes(["c", "a", "b"], 0.01, 0.01, seed=0)
    assert len(tiny.train) == len(tiny.val) == len(tiny.test) == 1
    no_val = split_classes(NAMES, 0.0, 0.5, seed=0)  # fewshot's split: no validation classes
    assert no_val.val == () and len(no_val.test) == round(len(NAMES) / 2)
    with pytest.raises(UserError, match=r"2 class\(es\) but .* at least 3"):
        split_classes(["a", "b"], 0.1, 0.1, seed=0)
    with pytest.raises(UserError, match=r"leaves no meta-train"):
        split_classes(NAMES, 0.5, 0.5, seed=0)
    with pytest.raises(UserError, match=r"test_fraction=0 leaves no meta-test"):
        split_classes(NAMES, 0.1, 0.0, seed=0)


GROUPED = [f"alpha{g}/char{c:02d}" for g in range(8) for c in range(3 + g)]  # uneven groups


@pytest.mark.parametrize("seed", range(6))
def test_split_by_group_keeps_every_group_whole_in_one_part(seed: int) -> None:
    split = split_classes(GROUPED, 0.15, 0.25, seed=seed, by="group")
    groups = split.groups()
    # the fractions count groups: 8 groups -> 2 test, 1 val, 5 train
    assert [len(groups[p]) for p in ("train", "val", "test")] == [5, 1, 2]
    assert not set(groups["test"]) & (set(groups["train"]) | set(groups["val"]))
    assert not set(groups["val"]) & set(groups["train"])
    for part, names in (("train", split.train), ("val", split.val), ("test", split.test)):
        # every class of a group goes with its group
        assert set(names) == {n for n in GROUPED if n.split("/")[0] in groups[part]}
    assert split.by == "group"
    assert split_classes(list(reversed(GROUPED)), 0.15, 0.25, seed=seed, by="group") == split


def test_split_by_group_varies_with_the_seed_and_holds_named_targets_out() -> None:
    tests = {
        tuple(split_classes(GROUPED, 0.15, 0.25, seed=s, by="group").groups()["test"])
        for s in range(6)
    }
    assert len(tests) > 1
    plain = split_classes(GROUPED, 0.15, 0.25, seed=0, by="group")
    trained = plain.train[0]  # a class of a meta-train group, named as a target
    split = split_classes(GROUPED, 0.15, 0.25, seed=0, held_out=[trained], by="group")
    group = trained.split("/")[0]
    assert {n for n in GROUPED if n.startswith(group + "/")} <= set(split.test)
    assert group not in split.groups()["train"] + split.groups()["val"]


def test_split_by_group_errors_name_the_fix() -> None:
    with pytest.raises(UserError, match=r"needs classes in groups.*dataset.split_by=class"):
        split_classes([*GROUPED, "loose"], 0.15, 0.25, seed=0, by="group")
    with pytest.raises(UserError, match=r"2 group\(s\) but a split by group needs at least 3"):
        split_classes(["a/x", "a/y", "b/x", "b/y"], 0.15, 0.25, seed=0, by="group")
    with pytest.raises(UserError, match=r"named target classes lie in 7 of the dataset's 8"):
        held = [f"alpha{g}/char00" for g in range(7)]
        split_classes(GROUPED, 0.15, 0.25, seed=0, held_out=held, by="group")
    with pytest.raises(UserError, match=r"split_by='alphabet' is not known; use class or group"):
        split_classes(GROUPED, 0.15, 0.25, seed=0, by="alphabet")


# --- task sampler ----------------------------------------------------------------------------


def test_sampler_shapes_disjoint_support_query_and_distinct_classes() -> None:
    classes = numbered_classes(6, 10)
    sampler = TaskSampler(classes, list(classes), support=3, query=4, seed=0)
    task = sampler.sample(5)
    assert task.support.shape == (5, 3, 1, 4, 4)
    assert task.query.shape == (5, 4, 1, 4, 4)
    assert len(set(task.class_names)) == 5
    for b, name in enumerate(task.class_names):
        support = set(task.support[b, :, 0, 0, 0].tolist())
        query = set(task.query[b, :, 0, 0, 0].tolist())
        assert len(support) == 3 and len(query) == 4 and not support & query
        # every image comes from the named class
        base = int(name[1:]) * 1000
        assert all(base <= v < base + 10 for v in support | query)


def test_sampler_is_reproducible_and_repeats_classes_only_when_needed() -> None:
    classes = numbered_classes(4, 5)
    a = TaskSampler(classes, list(classes), support=2, query=1, seed=3).sample(3)
    b = TaskSampler(classes, list(classes), support=2, query=1, seed=3).sample(3)
    assert a.class_names == b.class_names
    assert torch.equal(a.support, b.support) and torch.equal(a.query, b.query)
    big = TaskSampler(classes, list(classes), support=2, query=0, seed=3).sample(9)
    assert big.query.shape == (9, 0, 1, 4, 4)
    assert len(big.class_names) == 9 and set(big.class_names) <= set(classes)


def test_sampler_rejects_small_classes_and_bad_counts() -> None:
    classes = numbered_classes(3, 5)
    classes["c01"] = classes["c01"][:4]
    TaskSampler(classes, ["c00", "c02"], support=3, query=2, seed=0)
    with pytest.raises(UserError, match=r"class 'c01' has 4 images .* = 3 \+ 2 = 5"):
        TaskSampler(classes, ["c00", "c01"], support=3, query=2, seed=0)
    with pytest.raises(UserError, match=r"support=0"):
        TaskSampler(classes, ["c00"], support=0, query=1, seed=0)
    with pytest.raises(UserError, match=r"query=-1"):
        TaskSampler(classes, ["c00"], support=1, query=-1, seed=0)


# --- digits ----------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [16, 28])
def test_digits_shapes_range_and_names(size: int) -> None:
    classes = digits(size)
    assert list(classes) == [str(d) for d in range(10)]
    assert sum(v.shape[0] for v in classes.values()) == 1797
    zeros = classes["0"]
    assert zeros.shape == (178, 1, size, size) and zeros.dtype == torch.float32
    assert zeros.min().item() == -1.0 and zeros.max().item() > 0.9
    # strokes bright on a dark ground: the corners of a digit are background
    assert zeros[:, :, 0, 0].mean().item() < -0.95
    assert digits(size, channels=3)["3"].shape[1] == 3


def write_idx_mnist(raw: Path) -> None:
    """Tiny MNIST-format files (idx, big endian): 20 train + 10 test images, labels 0..9 cycling,
    image i filled with the value 8 * i so that rows can be told apart."""
    raw.mkdir(parents=True)
    for prefix, n, offset in (("train", 20, 0), ("t10k", 10, 20)):
        values = [8 * (offset + i) for i in range(n)]
        pixels = b"".join(bytes([v]) * 28 * 28 for v in values)
        header = (0x803).to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in (n, 28, 28))
        (raw / f"{prefix}-images-idx3-ubyte").write_bytes(header + pixels)
        labels = bytes((offset + i) % 10 for i in range(n))
        header = (0x801).to_bytes(4, "big") + n.to_bytes(4, "big")
        (raw / f"{prefix}-labels-idx1-ubyte").write_bytes(header + labels)


def test_mnist_and_fashion_mnist_from_local_files(tmp_path: Path) -> None:
    write_idx_mnist(tmp_path / "MNIST" / "raw")
    write_idx_mnist(tmp_path / "FashionMNIST" / "raw")
    classes = mnist(str(tmp_path), image_size=16)
    assert list(classes) == [str(d) for d in range(10)]
    # class "3": train images 3 and 13, test image 3 (index 23 overall), train before test
    assert classes["3"].shape == (3, 1, 16, 16)
    assert classes["3"][:, 0, 0, 0].tolist() == pytest.approx(
        [v / 127.5 - 1 for v in (24, 104, 184)], abs=1e-6
    )
    fashion = fashion_mnist(str(tmp_path), image_size=8, channels=3)
    assert "T-shirt/top" in fashion and "Ankle boot" in fashion
    assert fashion["T-shirt/top"].shape == (3, 3, 8, 8)
    with pytest.raises(UserError, match=r"MNIST files not found .*, or download=true"):
        mnist(str(tmp_path / "empty"), image_size=16)


# --- image folders ---------------------------------------------------------------------------


def test_imagefolder_grayscale_rgb_and_channels(tmp_path: Path) -> None:
    png(tmp_path / "white" / "a.png", 255)
    png(tmp_path / "white" / "b.PNG", 255, size=30)  # any case, any size
    png(tmp_path / "red" / "a.png", (255, 0, 0))
    (tmp_path / "red" / "notes.txt").write_text("not an image")
    (tmp_path / "empty").mkdir()
    gray = imagefolder(str(tmp_path), image_size=8, channels=1)
    assert list(gray) == ["red", "white"]  # the empty class is skipped
    assert gray["white"].shape == (2, 1, 8, 8) and torch.all(gray["white"] == 1.0)
    # PIL's luma of pure red is 76 -> 76 / 127.5 - 1
    assert gray["red"][0, 0, 0, 0].item() == pytest.approx(76 / 127.5 - 1)
    rgb = imagefolder(str(tmp_path), image_size=8, channels=3)
    assert rgb["red"].shape == (1, 3, 8, 8)
    assert rgb["red"][0, :, 0, 0].tolist() == [1.0, -1.0, -1.0]
    assert torch.all(rgb["white"] == 1.0)


def test_imagefolder_reads_groups_of_class_folders(tmp_path: Path) -> None:
    png(tmp_path / "plain" / "a.png", 255)  # <root>/<class>/ beside <root>/<group>/<class>/
    png(tmp_path / "latin" / "a" / "1.png", 0)
    png(tmp_path / "latin" / "b" / "1.png", 0)
    png(tmp_path / "greek" / "alpha" / "1.png", 0)
    classes = imagefolder(str(tmp_path), image_size=8)
    assert list(classes) == ["greek/alpha", "latin/a", "latin/b", "plain"]


def test_imagefolder_errors_name_the_problem(tmp_path: Path) -> None:
    with pytest.raises(UserError, match=r"does not exist; set root to"):
        imagefolder(str(tmp_path / "missing"), 8)
    with pytest.raises(UserError, match=r"holds no class folders with images"):
        imagefolder(str(tmp_path), 8)
    png(tmp_path / "cls" / "good.png", 0)
    (tmp_path / "cls" / "broken.png").write_bytes(b"definitely not a png")
    with pytest.raises(UserError, match=r"cannot read image '.*broken.png'"):
        imagefolder(str(tmp_path), 8)


def test_image_folder_flat_sorted_inverted_and_errors(tmp_path: Path) -> None:
    png(tmp_path / "b.png", 0)
    png(tmp_path / "a.png", 255)
    images = image_folder_flat(str(tmp_path), 6)
    assert images.shape == (2, 1, 6, 6)
    assert images[:, 0, 0, 0].tolist() == [1.0, -1.0]  # a.png first
    assert image_folder_flat(str(tmp_path), 6, invert=True)[:, 0, 0, 0].tolist() == [-1.0, 1.0]
    with pytest.raises(UserError, match=r"target.path '.*nope' does not exist"):
        image_folder_flat(str(tmp_path / "nope"), 6)
    (tmp_path / "c.png").write_bytes(b"\x89PNG broken")
    with pytest.raises(UserError, match=r"c.png"):
        image_folder_flat(str(tmp_path), 6)


# --- target ----------------------------------------------------------------------------------


def split_of(classes: dict[str, torch.Tensor]) -> ClassSplit:
    names = sorted(classes)
    return ClassSplit(train=tuple(names[:-2]), val=(names[-2],), test=(names[-1],))


def test_select_target_from_meta_test_class() -> None:
    classes = numbered_classes(5, 8)
    split = split_of(classes)
    kwargs = dict(path=None, shots=3, seed=1, image_size=4, channels=1)
    target = select_targets(classes, split, class_name=None, **kwargs)[0]
    assert target.class_name == "c04"
    assert target.shots.shape == (3, 1, 4, 4) and target.heldout.shape == (5, 1, 4, 4)
    shots, heldout = target.shots[:, 0, 0, 0].tolist(), target.heldout[:, 0, 0, 0].tolist()
    assert sorted(shots + heldout) == [4000.0 + i for i in range(8)]
    assert heldout == sorted(heldout)  # order kept
    again = select_targets(classes, split, class_name="c04", **kwargs)[0]
    assert torch.equal(again.shots, target.shots)


def test_select_target_errors() -> None:
    classes = numbered_classes(5, 8)
    split = split_of(classes)
    kwargs = dict(path=None, seed=0, image_size=4, channels=1)
    with pytest.raises(UserError, match=r"^shots=0 must be at least 1"):
        select_targets(classes, split, class_name=None, shots=0, **kwargs)
    with pytest.raises(UserError, match=r"'c00' is a meta-train class.*leak"):
        select_targets(classes, split, class_name="c00", shots=2, **kwargs)
    with pytest.raises(UserError, match=r"'c4' is not a meta-test class; nearest valid names: c04"):
        select_targets(classes, split, class_name="c4", shots=2, **kwargs)
    with pytest.raises(UserError, match=r"has 8 images but shots=8"):
        select_targets(classes, split, class_name=None, shots=8, **kwargs)


def test_select_target_from_path(tmp_path: Path) -> None:
    folder = tmp_path / "my_defect"
    for i in range(3):
        png(folder / f"{i}.png", 255)
    split = split_of(numbered_classes(3, 2))
    kwargs = dict(class_name=None, path=str(folder), seed=0, image_size=8, channels=1)
    target = select_targets({}, split, shots=2, **kwargs)[0]
    assert target.class_name == "my_defect"
    assert target.shots.shape == (2, 1, 8, 8) and target.heldout.shape == (1, 1, 8, 8)
    assert select_targets({}, split, shots=3, **kwargs)[0].heldout.shape[0] == 0
    with pytest.raises(UserError, match=r"holds 3 images but shots=5; add images or lower"):
        select_targets({}, split, shots=5, **kwargs)


# --- omniglot --------------------------------------------------------------------------------

needs_omniglot = pytest.mark.skipif(not SMALL1.is_file(), reason=f"{SMALL1} not present")


@pytest.fixture(scope="module")
def small1() -> dict[str, torch.Tensor]:
    if not SMALL1.is_file():
        pytest.skip(f"{SMALL1} not present")
    return omniglot(str(OMNIGLOT), image_size=28)


@needs_omniglot
def test_omniglot_small_zip(small1: dict[str, torch.Tensor]) -> None:
    assert len(small1) == 136
    assert "Korean/character07" in small1 and list(small1) == sorted(small1)
    assert {name.split("/")[0] for name in small1} == {
        "Balinese",
        "Early_Aramaic",
        "Greek",
        "Korean",
        "Latin",
    }
    assert {v.shape for v in small1.values()} == {torch.Size([20, 1, 28, 28])}
    images = torch.cat(list(small1.values()))
    assert images.min().item() == -1.0 and images.max().item() == 1.0
    assert images.mean().item() < -0.7  # inverted: dark ground, bright strokes


@needs_omniglot
def test_omniglot_config_splits_by_alphabet_for_every_seed(
    small1: dict[str, torch.Tensor],
) -> None:
    """`dataset=omniglot` as composed: no meta-test alphabet in meta-train or meta-val."""
    from hydra import compose, initialize_config_module

    from metaaug.config.build import split_by

    with initialize_config_module("metaaug.conf", version_base="1.3"):
        ds = compose("train", overrides=["dataset=omniglot"]).dataset
    assert split_by(ds) == "group"
    seen_test = set()
    for seed in range(5):
        split = split_classes(sorted(small1), ds.val_fraction, ds.test_fraction, seed,
                              by=split_by(ds))  # fmt: skip
        alphabets = {part: {n.split("/")[0] for n in getattr(split, part)}
                     for part in ("train", "val", "test")}  # fmt: skip
        # 5 alphabets: 1 meta-test, 1 meta-val (round half up of 0.25 x 5 and 0.15 x 5), 3 train
        assert [len(alphabets[p]) for p in ("train", "val", "test")] == [3, 1, 1]
        assert not alphabets["test"] & (alphabets["train"] | alphabets["val"])
        assert not alphabets["val"] & alphabets["train"]
        seen_test |= alphabets["test"]
    assert len(seen_test) > 1  # the seed chooses the alphabets


@needs_omniglot
def test_the_documented_alphabet_split_of_each_seed_is_the_code_s(
    small1: dict[str, torch.Tensor],
) -> None:
    rows = [line for line in (REPO / "docs" / "choices.md").read_text().splitlines()
            if line.strip().startswith("| ") and line.strip()[2].isdigit()]  # fmt: skip
    assert len(rows) == 5
    for row in rows:
        seed, train, val, test, fewshot = (c.strip() for c in row.strip().strip("|").split("|"))
        split = split_classes(sorted(small1), 0.15, 0.25, int(seed), by="group")
        groups = split.groups()
        for cell, part, names in ((train, "train", split.train), (val, "val", split.val),
                                  (test, "test", split.test)):  # fmt: skip
            assert cell == f"{', '.join(groups[part])} ({len(names)})"
        few = split_classes(sorted(small1), 0.0, 0.5, int(seed), by="group").groups()
        assert fewshot == f"{', '.join(few['train'])} / {', '.join(few['test'])}"


@needs_omniglot
def test_omniglot_extracted_folder_matches_zip(
    tmp_path: Path, small1: dict[str, torch.Tensor]
) -> None:
    picked = ("Korean/character07", "Greek/character01")
    with zipfile.ZipFile(SMALL1) as archive:
        for member in archive.namelist():
            parts = member.split("/")
            name = "/".join(parts[1:3])
            # a few members: drawers 01..04 of two characters (files are <id>_<drawer>.png)
            if name in picked and parts[-1].endswith(".png") and parts[-1][-6:-4] < "05":
                target = tmp_path / "omniglot-py" / member  # torchvision's layout
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(archive.read(member))
    folder = omniglot(str(tmp_path), image_size=28)
    assert sorted(folder) == sorted(picked)
    for name in picked:
        assert folder[name].shape == (4, 1, 28, 28)
        assert torch.equal(folder[name], small1[name][:4])
    raw = omniglot(str(tmp_path), image_size=28, invert=False)
    assert raw["Greek/character01"].mean().item() > 0.7  # white paper when not inverted


@needs_omniglot
def test_omniglot_full_background_wins_over_small(tmp_path: Path) -> None:
    (tmp_path / "images_background_small1.zip").symlink_to(SMALL1)
    png(tmp_path / "images_background" / "Latin" / "character01" / "a.png", 255)
    png(tmp_path / "images_evaluation" / "Angelic" / "character01" / "a.png", 255)
    classes = omniglot(str(tmp_path), image_size=8)
    assert list(classes) == ["Angelic/character01", "Latin/character01"]


def test_omniglot_missing_or_empty_root(tmp_path: Path) -> None:
    with pytest.raises(UserError, match=r"^root '.*nowhere' does not exist; set root"):
        omniglot(str(tmp_path / "nowhere"), 28)
    with pytest.raises(UserError, match=r"holds no Omniglot set; .*images_background_small1"):
        omniglot(str(tmp_path), 28)


def test_omniglot_corrupt_member_is_named(tmp_path: Path) -> None:
    with zipfile.ZipFile(tmp_path / "images_background_small2.zip", "w") as archive:
        name = "images_background_small2/Latin/character01/0001_01.png"
        archive.writestr(name, b"garbage")
    with pytest.raises(UserError, match=r"cannot read image .*0001_01.png"):
        omniglot(str(tmp_path), 28)


def test_uniform_images_keep_exact_values(tmp_path: Path) -> None:
    """Resizing must not shift constant colours (an off-by-one would bias every metric)."""
    png(tmp_path / "mid.png", 128, size=105)
    value = image_folder_flat(str(tmp_path), 28)[0, 0]
    assert value.min().item() == pytest.approx(128 / 127.5 - 1, abs=1e-6)
    assert value.max().item() == pytest.approx(128 / 127.5 - 1, abs=1e-6)


def test_a_folder_of_images_with_class_folders_beside_them_warns(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A stray image beside class folders makes the folder one class: said, not silent."""
    from metaaug.data.folders import class_folders

    for place in ("stray.png", "dent/0.png", "crack/0.png"):
        (tmp_path / place).parent.mkdir(parents=True, exist_ok=True)
        Image.new("L", (8, 8)).save(tmp_path / place)
    with caplog.at_level(logging.WARNING, logger="metaaug.data.folders"):
        assert class_folders(tmp_path, "shots") is None
    assert "is read as one class; its folders of images are not read (crack, dent)" in caplog.text
    (tmp_path / "stray.png").unlink()
    caplog.clear()
    assert sorted(class_folders(tmp_path, "shots") or {}) == ["crack", "dent"]
    assert not caplog.text


def test_links_to_missing_images_are_skipped_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A dataset of links that lost some of their images: the rest are read, the loss said."""
    from metaaug.data.images import image_files

    Image.new("L", (8, 8)).save(tmp_path / "kept.png")
    (tmp_path / "gone.png").symlink_to(tmp_path / "nowhere.png")
    (tmp_path / "alive.png").symlink_to(tmp_path / "kept.png")
    with caplog.at_level(logging.WARNING, logger="metaaug.data.images"):
        assert [p.name for p in image_files(tmp_path)] == ["alive.png", "kept.png"]
    assert "1 link(s) to a missing image skipped (gone.png)" in caplog.text
