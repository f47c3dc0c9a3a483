"""Training tasks through learn2learn's ``Taskset`` (the seed's task transforms).

Tasks are drawn over image *indices* — ``FusedNWaysKShots`` → ``LoadData`` → ``RemapLabels``
→ ``ConsecutiveLabels``, exactly as learn2learn's benchmarks build them — so the trainer can
gather a whole meta-batch of pixels with one indexing operation. Sampling uses Python's
``random`` module, as learn2learn does: seed it (or save and restore its state) to repeat a
run's tasks (:mod:`anil_edge.train.streams` does).
"""

from __future__ import annotations

import numpy as np
import torch

from ..data.image_set import ImageSet
from ..data.tasks import TaskIndices, check_task_shape


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
        check_task_shape(data, ways, shots, queries, name)
        from .l2l_import import learn2learn

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
        idx_rows, lab_rows = [], []
        for _ in range(n_tasks):
            indices, labels = self.tasks.sample()
            order = np.argsort(labels.numpy(), kind="stable")  # class-major: label 0's images first
            idx_rows.append(indices.numpy()[order].reshape(self.ways, per_class))
            lab_rows.append(labels.numpy()[order].reshape(self.ways, per_class))
        idx, lab = np.stack(idx_rows), np.stack(lab_rows)  # (T, ways, per_class)
        s, q = slice(0, self.shots), slice(self.shots, per_class)
        flat = lambda a: a.reshape(n_tasks, -1).astype(np.int64)  # noqa: E731
        return TaskIndices(flat(idx[:, :, s]), flat(lab[:, :, s]), flat(idx[:, :, q]), flat(lab[:, :, q]))
