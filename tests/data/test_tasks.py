"""Image sets, group splits, learn2learn's training tasks and the fixed numpy evaluation tasks."""

from __future__ import annotations

import random

import numpy as np
import pytest

pytest.importorskip("torch")

from anil_edge.data.image_set import ImageSet
from anil_edge.data.splits import split_by_group
from anil_edge.data.tasks import fixed_tasks
from anil_edge.errors import InputError
from anil_edge.train.task_sampler import TaskSampler
from tests.train.helpers import glyph_set


def test_rotations_add_classes():
    data = glyph_set(n_classes=4, per_class=2)
    rotated = data.with_rotations()
    assert rotated.n_classes == 16 and rotated.images.shape[0] == 32
    first = rotated.images[rotated.labels == 4][0, :, :, 0]  # class 0 turned by 90°
    np.testing.assert_array_equal(first, np.rot90(data.images[0, :, :, 0]))
    assert rotated.class_names[4] == "glyph000@90" and rotated.groups[4] == data.groups[0]


def test_group_split_is_disjoint_and_deterministic():
    data = glyph_set(n_classes=40, n_groups=8)
    a, b = (split_by_group(data, validation=0.2, test=0.2, seed=3) for _ in range(2))
    assert a.test.class_names == b.test.class_names
    sets = [set(s.groups) for s in (a.train, a.validation, a.test)]
    assert sets[0].isdisjoint(sets[1]) and sets[0].isdisjoint(sets[2]) and sets[1].isdisjoint(sets[2])
    assert a.test.n_classes >= 8 and a.validation.n_classes >= 8
    named = split_by_group(data, test_groups=("group1",), validation_groups=("group2",), test=0.01, validation=0.01)
    assert set(named.test.groups) == {"group1"} and set(named.validation.groups) == {"group2"}


def test_group_split_errors():
    with pytest.raises(InputError, match="unknown group"):
        split_by_group(glyph_set(), test_groups=("nope",))
    with pytest.raises(InputError, match="at least 3 groups"):
        split_by_group(glyph_set(n_groups=2))


def _learn2learn_tasks(data, n, **shape):
    random.seed(0)
    return TaskSampler(data, **shape).sample(n)


def _fixed(data, n, **shape):
    return fixed_tasks(data, tasks=n, seed=0, **shape)


@pytest.mark.parametrize("draw", [_learn2learn_tasks, _fixed])
def test_tasks_are_class_major_and_disjoint(draw):
    data = glyph_set(n_classes=10, per_class=6)
    tasks = draw(data, 4, ways=5, shots=2, queries=3)
    assert tasks.support.shape == (4, 10) and tasks.query.shape == (4, 15)
    np.testing.assert_array_equal(tasks.support_labels[0], np.repeat(np.arange(5), 2))
    np.testing.assert_array_equal(tasks.query_labels[0], np.repeat(np.arange(5), 3))
    for t in range(4):
        assert not set(tasks.support[t]) & set(tasks.query[t])  # no image is both
        for c in range(5):  # each task label is one dataset class
            classes = set(data.labels[tasks.support[t][tasks.support_labels[t] == c]])
            classes |= set(data.labels[tasks.query[t][tasks.query_labels[t] == c]])
            assert len(classes) == 1


def test_fixed_tasks_repeat_for_a_seed_and_leave_global_state_alone():
    data = glyph_set(n_classes=10, per_class=6)
    random.seed(1)
    np.random.seed(1)
    a = fixed_tasks(data, ways=5, shots=1, queries=1, tasks=3, seed=7)
    after = random.random(), np.random.random()
    random.seed(1)
    np.random.seed(1)
    b = fixed_tasks(data, ways=5, shots=1, queries=1, tasks=3, seed=7)
    np.testing.assert_array_equal(a.support, b.support)
    np.testing.assert_array_equal(a.query, b.query)
    assert (random.random(), np.random.random()) == after
    assert not np.array_equal(a.support, fixed_tasks(data, ways=5, shots=1, queries=1, tasks=3, seed=8).support)


def test_fixed_tasks_draw_classes_and_images_as_learn2learn_does():
    """Both samplers pick classes, and images within a class, uniformly: every class and every
    image is drawn about equally often (a chi-square bound at p ≈ 0.001 on each count vector)."""
    data = glyph_set(n_classes=8, per_class=5)
    n = 600
    for tasks in (_learn2learn_tasks(data, n, ways=3, shots=1, queries=1), _fixed(data, n, ways=3, shots=1, queries=1)):
        picked = np.concatenate([tasks.support.ravel(), tasks.query.ravel()])
        for counts, cells in ((np.bincount(data.labels[tasks.support[:, ::1]].ravel(), minlength=8), 8),
                              (np.bincount(picked, minlength=40), 40)):
            expected = counts.sum() / cells
            chi2 = ((counts - expected) ** 2 / expected).sum()
            assert chi2 < cells - 1 + 4 * np.sqrt(2 * (cells - 1)), (counts, chi2)


@pytest.mark.parametrize("draw", [lambda d, **k: TaskSampler(d, **k), lambda d, **k: fixed_tasks(d, tasks=1, seed=0, **k)])
def test_sampler_errors_say_what_is_missing(draw):
    data = glyph_set(n_classes=4, per_class=3)
    with pytest.raises(InputError, match="5-way tasks need 5 classes, found 4"):
        draw(data, ways=5, shots=1, queries=1)
    with pytest.raises(InputError, match="fewer than shots \\+ queries = 4"):
        draw(data, ways=2, shots=1, queries=3)


def test_within_group_tasks_take_every_class_from_one_group():
    data = glyph_set(n_classes=24, per_class=4, n_groups=6)  # 4 classes per group
    tasks = fixed_tasks(data, ways=3, shots=1, queries=1, tasks=200, seed=0, within_group=True)
    groups_used = set()
    for t in range(200):
        groups = {data.groups[data.labels[i]] for i in tasks.support[t]}
        assert len(groups) == 1
        groups_used |= groups
    assert groups_used == set(data.groups)  # every eligible group is drawn
    mixed = fixed_tasks(data, ways=3, shots=1, queries=1, tasks=200, seed=0)
    assert any(len({data.groups[data.labels[i]] for i in mixed.support[t]}) > 1 for t in range(200))


def test_within_group_tasks_need_a_large_enough_group():
    data = glyph_set(n_classes=12, per_class=4, n_groups=6)  # 2 classes per group
    with pytest.raises(InputError, match="need a group with 3 classes; the largest of its 6 groups has 2"):
        fixed_tasks(data, ways=3, shots=1, queries=1, tasks=5, seed=0, within_group=True)


def _drawn_set(n_classes: int = 12, per_class: int = 6):
    """glyph_set with each class drawn once by each of drawers 1..per_class."""
    data = glyph_set(n_classes=n_classes, per_class=per_class, n_groups=3)
    drawers = np.zeros_like(data.labels)
    for c in range(n_classes):
        drawers[data.labels == c] = np.arange(1, per_class + 1)
    return ImageSet(data.images, data.labels, data.class_names, data.groups, drawers)


@pytest.mark.parametrize("shots", [1, 2])
def test_distinct_drawers_keep_support_and_query_people_apart(shots):
    data = _drawn_set()
    tasks = fixed_tasks(data, ways=4, shots=shots, queries=3, tasks=300, seed=0, within_group=True,
                        distinct_drawers=True)
    support_sets = set()
    for t in range(300):
        support_drawers = data.drawers[tasks.support[t]].reshape(4, shots)
        query_drawers = data.drawers[tasks.query[t]].reshape(4, 3)
        assert all(set(row) == set(support_drawers[0]) for row in support_drawers)  # one set per task (Lake)
        assert not set(query_drawers.ravel()) & set(support_drawers[0])
        assert len({data.groups[data.labels[i]] for i in tasks.support[t]}) == 1
        assert (data.labels[tasks.support[t]].reshape(4, shots) == data.labels[tasks.support[t]][::shots, None]).all()
        support_sets.add(tuple(sorted(support_drawers[0])))
    # Every drawer (set) is used, roughly uniformly.
    assert len(support_sets) == (6 if shots == 1 else 15)
    again = fixed_tasks(data, ways=4, shots=shots, queries=3, tasks=300, seed=0, within_group=True,
                        distinct_drawers=True)
    np.testing.assert_array_equal(again.query, tasks.query)


def test_distinct_drawers_errors_say_what_is_missing():
    with pytest.raises(InputError, match="records none"):
        fixed_tasks(glyph_set(), ways=3, shots=1, queries=1, tasks=2, seed=0, distinct_drawers=True)
    data = _drawn_set()
    twice = ImageSet(data.images, data.labels, data.class_names, data.groups, (data.drawers + 1) // 2)  # 3 people
    with pytest.raises(InputError, match="has 4 images by drawers other than its support's; expected at least 5"):
        fixed_tasks(twice, ways=3, shots=1, queries=5, tasks=2, seed=0, distinct_drawers=True)
    with pytest.raises(InputError, match="share 0"):
        fixed_tasks(_no_common(), ways=2, shots=1, queries=1, tasks=1, seed=0, distinct_drawers=True)


def _no_common():
    data = _drawn_set(n_classes=2, per_class=3)
    drawers = data.drawers.copy()
    drawers[data.labels == 1] += 10  # class 1's people drew nothing of class 0
    return ImageSet(data.images, data.labels, data.class_names, data.groups, drawers)


def test_image_set_checks_drawers():
    data = glyph_set(n_classes=3, per_class=2)
    with pytest.raises(InputError, match="drawers must be int64"):
        ImageSet(data.images, data.labels, data.class_names, data.groups, np.zeros(2, np.int64))
