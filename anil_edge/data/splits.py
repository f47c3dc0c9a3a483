"""Disjoint train / validation / test classes, holding out whole groups (alphabets, scripts)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import InputError
from .image_set import ImageSet


@dataclass(frozen=True, eq=False)
class Split:
    """Three image sets with disjoint classes (and disjoint groups)."""

    train: ImageSet
    validation: ImageSet
    test: ImageSet


def split_by_group(
    data: ImageSet, *, validation: float = 0.15, test: float = 0.25, seed: int = 0,
    test_groups: tuple[str, ...] = (), validation_groups: tuple[str, ...] = (),
) -> Split:
    """Assign whole groups to test, then validation, until each holds its fraction of the classes.

    Groups are shuffled with ``seed``; ``test_groups`` / ``validation_groups`` name groups to
    place first. Every split with a fraction > 0 gets at least one group; the rest go to train.
    ``test=0`` holds out no test classes (the model is then scored on other data).
    """
    names = sorted(set(data.groups))
    unknown = sorted(set(test_groups + validation_groups) - set(names))
    if unknown:
        raise InputError(f"unknown group(s) {unknown}: expected some of {names}")
    needed = 1 + (validation > 0) + (test > 0 or bool(test_groups))
    if len(names) < needed:
        raise InputError(f"a group split into {needed} parts needs at least {needed} groups, found {len(names)}: {names}")
    order = [names[i] for i in np.random.default_rng(seed).permutation(len(names))]
    sizes = {g: sum(1 for c in data.groups if c == g) for g in names}
    chosen_test = _fill(list(test_groups), order, sizes, test * data.n_classes, exclude=set(validation_groups))
    chosen_val = _fill(list(validation_groups), order, sizes, validation * data.n_classes, exclude=set(chosen_test))
    if len(set(names) - set(chosen_test) - set(chosen_val)) == 0:
        raise InputError(f"the fractions leave no group for training: test={test}, validation={validation}")
    return _make(data, set(chosen_test), set(chosen_val))


def _fill(chosen: list[str], order: list[str], sizes: dict[str, int], target: float, exclude: set[str]) -> list[str]:
    if target <= 0:
        return chosen
    for group in order:
        if sum(sizes[g] for g in chosen) >= target and chosen:
            break
        if group not in chosen and group not in exclude:
            chosen.append(group)
    return chosen


def _make(data: ImageSet, test: set[str], validation: set[str]) -> Split:
    groups = np.asarray(data.groups)
    in_test, in_val = np.isin(groups, list(test)), np.isin(groups, list(validation))
    return Split(
        train=data.subset(np.flatnonzero(~in_test & ~in_val)),
        validation=data.subset(np.flatnonzero(in_val)),
        test=data.subset(np.flatnonzero(in_test)),
    )
