"""The device sampler draws learn2learn's task distribution: chi-square tests of its counts
against uniformity and against learn2learn's own ``Taskset``, on classes of unequal sizes."""

from __future__ import annotations

import random
from itertools import combinations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from anil_edge.data.image_set import ImageSet
from anil_edge.errors import InputError
from anil_edge.train.device_sampler import DeviceTaskSampler, task_labels
from anil_edge.train.task_sampler import TaskSampler
from tests.train.helpers import glyph_set

SHAPE = dict(ways=3, shots=1, queries=2)


def _uneven(n_classes: int = 6) -> ImageSet:
    """Classes of 4..4+n_classes-1 images: the padding of the index table is exercised."""
    base = glyph_set(n_classes=n_classes, per_class=4 + n_classes)
    keep = np.concatenate([np.flatnonzero(base.labels == c)[: 4 + c] for c in range(n_classes)])
    return ImageSet(base.images[keep], base.labels[keep], base.class_names, base.groups)


def _device_draws(data: ImageSet, n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    sampler = DeviceTaskSampler(data, device=torch.device("cpu"), **SHAPE)
    support, query = sampler.sample(n, torch.Generator().manual_seed(seed))
    return support.numpy(), query.numpy()


def _learn2learn_draws(data: ImageSet, n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    random.seed(seed)
    tasks = TaskSampler(data, **SHAPE).sample(n)
    return tasks.support, tasks.query


def _counts(data: ImageSet, support: np.ndarray, query: np.ndarray) -> dict[str, np.ndarray]:
    """Count vectors whose cells are equally likely under the task distribution."""
    ways, n_classes = SHAPE["ways"], data.n_classes
    by_label = data.labels[support].reshape(-1, ways)  # (T, ways): the class behind each label
    pairs = {p: i for i, p in enumerate(combinations(range(n_classes), 2))}
    pair_counts = np.zeros(len(pairs), np.int64)
    for row in np.sort(by_label, axis=1):
        for p in combinations(row.tolist(), 2):
            pair_counts[pairs[p]] += 1
    picked_support = np.bincount(support.ravel(), minlength=data.images.shape[0])
    picked_query = np.bincount(query.ravel(), minlength=data.images.shape[0])
    return {"class at each label": np.bincount(by_label.ravel() * ways + np.tile(np.arange(ways), len(by_label)),
                                               minlength=n_classes * ways),
            "class pairs": pair_counts,
            "support images": picked_support, "query images": picked_query}


def _chi2_bound(df: int) -> float:
    return df + 4 * np.sqrt(2 * df)  # about p = 0.001 for these sizes (Wilson-Hilferty)


def test_layout_padding_and_repeatability():
    data = _uneven()
    support, query = _device_draws(data, 500)
    assert support.shape == (500, 3) and query.shape == (500, 6) and support.dtype == np.int64
    for t in range(500):
        assert len(set(support[t]) | set(query[t])) == 9  # no image twice in a task
        classes = data.labels[support[t]]
        assert len(set(classes)) == 3
        np.testing.assert_array_equal(data.labels[query[t]], np.repeat(classes, 2))  # class-major, same classes
    again, _ = _device_draws(data, 500)
    np.testing.assert_array_equal(again, support)
    np.testing.assert_array_equal(task_labels(2, 3, 2, torch.device("cpu")).numpy(), [[0, 0, 1, 1, 2, 2]] * 2)


def test_each_cell_is_uniform_as_in_learn2learn():
    """Classes (and their label position, and pairs of classes) and the images within a class
    are uniform: chi-square of each count vector (images: within each class) under the bound."""
    data = _uneven()
    for draws in (_device_draws(data, 4000), _learn2learn_draws(data, 4000)):
        counts = _counts(data, *draws)
        for name in ("class at each label", "class pairs"):
            c = counts[name]
            chi2 = ((c - c.mean()) ** 2 / c.mean()).sum()
            assert chi2 < _chi2_bound(c.size - 1), (name, c)
        for role in ("support images", "query images"):
            for k in range(data.n_classes):
                c = counts[role][data.labels == k]
                chi2 = ((c - c.mean()) ** 2 / c.mean()).sum()
                assert chi2 < _chi2_bound(c.size - 1) + 10, (role, k, c)


def test_counts_are_homogeneous_with_learn2learn():
    """Two-sample chi-square (homogeneity) of the device sampler's counts against learn2learn's."""
    data = _uneven()
    ours, theirs = _counts(data, *_device_draws(data, 4000, seed=1)), _counts(data, *_learn2learn_draws(data, 4000, 1))
    for name in ours:
        a, b = ours[name].astype(float), theirs[name].astype(float)
        keep = (a + b) > 0
        a, b = a[keep], b[keep]
        expected_a, expected_b = (a + b) * a.sum() / (a.sum() + b.sum()), (a + b) * b.sum() / (a.sum() + b.sum())
        chi2 = ((a - expected_a) ** 2 / expected_a + (b - expected_b) ** 2 / expected_b).sum()
        assert chi2 < _chi2_bound(a.size - 1), (name, chi2)


def test_a_biased_sampler_fails_the_test():
    """The test has power: a sampler that favours low class indices is caught."""
    data = _uneven()
    support, query = _device_draws(data, 4000)
    biased = support.copy()
    low = data.labels[support[:, 0]] == 0
    biased[low[: len(low) // 2].nonzero()[0]] = support[0]  # duplicate one task over some draws
    counts = _counts(data, biased, query)["class pairs"]
    chi2 = ((counts - counts.mean()) ** 2 / counts.mean()).sum()
    assert chi2 > _chi2_bound(counts.size - 1)


def test_too_small_data_is_a_clear_error():
    with pytest.raises(InputError, match="fewer than shots \\+ queries = 3"):
        DeviceTaskSampler(glyph_set(n_classes=4, per_class=2), device=torch.device("cpu"), **SHAPE)
