"""N-way K-shot tasks through learn2learn's ``Taskset`` (``TaskDataset``; the seed's task transforms).

Tasks are drawn over image *indices* — ``FusedNWaysKShots`` → ``LoadData`` → ``RemapLabels``
→ ``ConsecutiveLabels``, exactly as learn2learn's benchmarks build them — so the trainer can
gather a whole meta-batch of pixels (or cached embeddings) with one indexing operation.
Sampling uses Python's ``random`` module, as learn2learn does: seed it (or save and restore
its state) to repeat a run's tasks.
"""

from __future__ import annotations

import random
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator

import numpy as np
import torch

from ...errors import InputError
from .image_set import ImageSet


@dataclass(frozen=True, eq=False)
class TaskIndices:
    """A meta-batch of T tasks as indices into an :class:`ImageSet`, labels in [0, ways)."""

    support: np.ndarray  # (T, ways * shots) image indices, class-major
    support_labels: np.ndarray  # (T, ways * shots)
    query: np.ndarray  # (T, ways * queries) image indices, class-major
    query_labels: np.ndarray  # (T, ways * queries)


class _IndexDataset(torch.utils.data.Dataset):
    """Item i is (i, label of i): tasks carry indices, not pixels."""

    def __init__(self, labels: np.ndarray) -> None:
        self.labels = labels

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> tuple[int, int]:
        return i, int(self.labels[i])


class TaskSampler:
    """Draws ``ways``-way tasks with ``shots`` support and ``queries`` query images per class."""

    def __init__(self, data: ImageSet, *, ways: int, shots: int, queries: int, name: str = "data") -> None:
        _check(data, ways, shots, queries, name)
        from ..l2l_import import learn2learn

        l2l = learn2learn()
        from learn2learn.data.transforms import ConsecutiveLabels, FusedNWaysKShots, LoadData, RemapLabels

        self.ways, self.shots, self.queries = ways, shots, queries
        labels_to_indices = {int(c): np.flatnonzero(data.labels == c).tolist() for c in range(data.n_classes)}
        meta = l2l.data.MetaDataset(_IndexDataset(data.labels), labels_to_indices=labels_to_indices)
        transforms = [
            FusedNWaysKShots(meta, n=ways, k=shots + queries),
            LoadData(meta),
            RemapLabels(meta),
            ConsecutiveLabels(meta),
        ]
        self.tasks = l2l.data.Taskset(meta, task_transforms=transforms, num_tasks=-1)

    def sample(self, n_tasks: int) -> TaskIndices:
        """``n_tasks`` fresh tasks."""
        per_class = self.shots + self.queries
        idx, lab = [], []
        for _ in range(n_tasks):
            indices, labels = self.tasks.sample()
            order = np.argsort(labels.numpy(), kind="stable")  # class-major: label 0's images first
            idx.append(indices.numpy()[order].reshape(self.ways, per_class))
            lab.append(labels.numpy()[order].reshape(self.ways, per_class))
        idx, lab = np.stack(idx), np.stack(lab)  # (T, ways, per_class)
        s, q = slice(0, self.shots), slice(self.shots, per_class)
        flat = lambda a: a.reshape(n_tasks, -1).astype(np.int64)  # noqa: E731
        return TaskIndices(flat(idx[:, :, s]), flat(lab[:, :, s]), flat(idx[:, :, q]), flat(lab[:, :, q]))


@contextmanager
def seeded_random(seed: int) -> Iterator[None]:
    """Run a block with Python's ``random`` seeded, then restore the previous state — fixed
    evaluation tasks that do not disturb the training task stream."""
    state = random.getstate()
    random.seed(seed)
    try:
        yield
    finally:
        random.setstate(state)


def _check(data: ImageSet, ways: int, shots: int, queries: int, name: str) -> None:
    problems = []
    if ways < 2 or shots < 1 or queries < 1:
        problems.append(f"expected ways >= 2, shots >= 1, queries >= 1, found {ways}, {shots}, {queries}")
    if data.n_classes < ways:
        problems.append(f"{ways}-way tasks need {ways} classes, found {data.n_classes}")
    sizes = data.class_sizes()
    small = np.flatnonzero(sizes < shots + queries)
    if small.size:
        names = ", ".join(f"{data.class_names[c]} ({sizes[c]})" for c in small[:5])
        problems.append(
            f"{small.size} class(es) have fewer than shots + queries = {shots + queries} images: {names}"
        )
    if problems:
        raise InputError(f"{name}: cannot draw tasks: " + "; ".join(problems))
