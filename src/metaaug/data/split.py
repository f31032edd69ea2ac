"""Disjoint meta-train / meta-val / meta-test class splits, deterministic for a seed.

Few-shot generation is only honest when the target class was never seen in meta-training, so
the split is by class, never by image, and must come out the same for the same seed on any
machine and whatever order the loader listed the classes in.

Classes named `<group>/<class>` (an Omniglot alphabet and its characters; an image folder laid
out `<root>/<group>/<class>/`) can be split by group instead (`dataset.split_by=group`): whole
groups go to one part, so a meta-test character comes from an alphabet meta-training never saw
(the protocol of Lake et al. 2015 and Vinyals et al. 2016). A split of characters mixes
alphabets across the parts and is an easier, different task.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from metaaug.errors import UserError


@dataclass(frozen=True)
class ClassSplit:
    """Class names per split, each tuple sorted (so "the first meta-test class" is defined)."""

    train: tuple[str, ...]
    val: tuple[str, ...]
    test: tuple[str, ...]
    by: str = "class"  # what was drawn: "class" or "group" (whole groups per part)

    def groups(self) -> dict[str, list[str]]:
        """part -> the sorted groups its classes belong to (what a run records)."""
        parts = {"train": self.train, "val": self.val, "test": self.test}
        return {part: sorted({group_of(n) for n in names}) for part, names in parts.items()}


def group_of(name: str) -> str:
    """The group of a class named `<group>/<class>` (an Omniglot alphabet); "" for none."""
    return name.split("/", 1)[0] if "/" in name else ""


def _count(n: int, fraction: float, at_most: int) -> int:
    """round(n * fraction) half up, clamped to [1, at_most]: every split with a non-zero
    fraction gets a class (a fraction of exactly 0 gets none)."""
    if fraction == 0:
        return 0
    return max(1, min(at_most, math.floor(n * fraction + 0.5)))


def split_classes(
    names: Sequence[str],
    val_fraction: float,
    test_fraction: float,
    seed: int,
    held_out: Sequence[str] = (),
    by: str = "class",
) -> ClassSplit:
    """Split class names into disjoint train/val/test with a seeded permutation.

    `by="group"` draws the groups (see `group_of`) instead, with the fractions applied to the
    number of groups, and gives each part the classes of its groups; see `split_groups`.

    The names are sorted (and de-duplicated) first, so the result does not depend on the input
    order; test is taken first, then val, the rest is train. The classes in `held_out` (the
    targets a user names) go to test before the draw, so a named class is never meta-trained on;
    they count towards the test share. With none named, or only classes the seed's split puts in
    test anyway, the split is the same as without.
    """
    for key, value in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
        if not 0.0 <= value < 1.0:
            raise UserError(f"split {key}={value} is outside [0, 1); set it to e.g. 0.1")
    if val_fraction + test_fraction >= 1.0:
        raise UserError(
            f"split val_fraction + test_fraction = {val_fraction + test_fraction} leaves no "
            "meta-train classes; lower them so that they sum to less than 1"
        )
    if by not in ("class", "group"):
        raise UserError(f"dataset.split_by={by!r} is not known; use class or group")
    unknown = sorted(set(held_out) - set(names))
    if unknown:
        raise UserError(
            f"held-out classes {unknown} are not classes of the dataset; name existing classes"
        )
    if by == "group":
        return split_groups(names, val_fraction, test_fraction, seed, held_out)
    ordered = sorted(set(names))
    n = len(ordered)
    if n < 3:
        raise UserError(
            f"the dataset has {n} class(es) but a meta-train/val/test split needs at least 3; "
            "use a dataset with more classes (or more class folders under dataset.root)"
        )
    if test_fraction == 0:
        raise UserError("split test_fraction=0 leaves no meta-test class; set it to e.g. 0.2")
    forced = sorted(set(held_out))
    if len(forced) > n - 2:
        raise UserError(
            f"{len(forced)} named target classes leave fewer than 2 of the dataset's {n} classes "
            "for meta-train and meta-val; name fewer targets"
        )
    n_test = _count(n, test_fraction, n - 2)
    plain = _draw(ordered, [], n_test, val_fraction, seed)
    if set(forced) <= set(plain.test):
        # the named classes are meta-test classes of the seed's split anyway: keep that split,
        # so `target.class_name=<its first test class>` is the same run as naming none
        return plain
    return _draw(ordered, forced, max(n_test, len(forced)), val_fraction, seed)


def _draw(
    ordered: list[str], forced: list[str], n_test: int, val_fraction: float, seed: int
) -> ClassSplit:
    """`forced` plus a seeded draw from the other classes make the test split, the next draw
    the val split, the rest train."""
    n_val = _count(len(ordered), val_fraction, len(ordered) - n_test - 1)
    pool = [name for name in ordered if name not in forced]
    perm = torch.randperm(len(pool), generator=torch.Generator().manual_seed(seed)).tolist()
    shuffled = forced + [pool[i] for i in perm]
    return ClassSplit(
        train=tuple(sorted(shuffled[n_test + n_val :])),
        val=tuple(sorted(shuffled[n_test : n_test + n_val])),
        test=tuple(sorted(shuffled[:n_test])),
    )


def split_groups(
    names: Sequence[str],
    val_fraction: float,
    test_fraction: float,
    seed: int,
    held_out: Sequence[str] = (),
) -> ClassSplit:
    """The class split of `split_classes` drawn over groups: every class of a group lands in
    the part its group was drawn into. A named target's group goes to meta-test whole."""
    ordered = sorted(set(names))
    loose = [name for name in ordered if not group_of(name)]
    if loose:
        raise UserError(
            f"dataset.split_by=group needs classes in groups (<root>/<group>/<class>/), but "
            f"{len(loose)} class(es) have none (e.g. '{loose[0]}'); lay the folders out by "
            "group or set dataset.split_by=class"
        )
    groups = sorted({group_of(name) for name in ordered})
    if len(groups) < 3:
        raise UserError(
            f"the dataset has {len(groups)} group(s) but a split by group needs at least 3 "
            "(one per meta-train/val/test part); add groups or set dataset.split_by=class"
        )
    held_groups = sorted({group_of(name) for name in held_out})
    try:
        drawn = split_classes(groups, val_fraction, test_fraction, seed, held_groups)
    except UserError as err:
        if "named target classes" not in str(err):
            raise
        raise UserError(
            f"the named target classes lie in {len(held_groups)} of the dataset's "
            f"{len(groups)} groups, leaving fewer than 2 groups for meta-train and meta-val; "
            "name targets from fewer groups or set dataset.split_by=class"
        ) from None

    def members(part: tuple[str, ...]) -> tuple[str, ...]:
        chosen = set(part)
        return tuple(name for name in ordered if group_of(name) in chosen)

    return ClassSplit(members(drawn.train), members(drawn.val), members(drawn.test), by="group")
