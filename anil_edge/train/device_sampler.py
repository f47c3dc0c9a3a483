"""Training tasks drawn with tensor operations on the training device (no Python per task).

The distribution is learn2learn's ``FusedNWaysKShots`` (what :class:`.task_sampler.TaskSampler`
runs): ``ways`` classes uniformly without replacement, then ``shots + queries`` images of each
class uniformly without replacement, in a uniformly random class order. Both draws are the
top-k of independent uniform keys — a uniformly random ordered subset — so a whole meta-batch
is two ``rand`` calls, two ``topk`` and two gathers, and on a GPU the host never waits for it.
``tests/train/data/test_device_sampler.py`` checks the distribution against learn2learn's with
chi-square tests.
"""

from __future__ import annotations

import numpy as np
import torch

from ..data.image_set import ImageSet
from ..data.tasks import check_task_shape


class DeviceTaskSampler:
    """Draws meta-batches of ``ways``-way tasks as image indices on ``device``."""

    def __init__(self, data: ImageSet, *, ways: int, shots: int, queries: int, device: torch.device,
                 name: str = "data") -> None:
        check_task_shape(data, ways, shots, queries, name)
        self.ways, self.shots, self.queries = ways, shots, queries
        sizes = data.class_sizes()
        table = np.zeros((data.n_classes, int(sizes.max())), np.int64)  # class c's images, padded
        for c in range(data.n_classes):
            members = np.flatnonzero(data.labels == c)
            table[c, : members.size] = members
        self.table = torch.from_numpy(table).to(device)
        self.padding = torch.from_numpy(np.arange(table.shape[1])[None, :] >= sizes[:, None]).to(device)
        self.device = device

    def sample(self, n_tasks: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """Support and query indices, (T, ways * shots) and (T, ways * queries), class-major (the
        labels are ``arange(ways)`` repeated; see :func:`task_labels`). ``generator`` lives on
        ``device``."""
        n_classes, width = self.table.shape
        per_class = self.shots + self.queries
        keys = torch.rand(n_tasks, n_classes, generator=generator, device=self.device)
        classes = keys.topk(self.ways, dim=1).indices  # (T, ways): a random ordered subset
        image_keys = torch.rand(n_tasks, self.ways, width, generator=generator, device=self.device)
        image_keys = image_keys.masked_fill(self.padding[classes], -1.0)  # padding never wins
        picks = image_keys.topk(per_class, dim=2).indices  # (T, ways, per_class)
        idx = torch.gather(self.table[classes], 2, picks)
        support = idx[:, :, : self.shots].reshape(n_tasks, -1)
        query = idx[:, :, self.shots :].reshape(n_tasks, -1)
        return support, query


def task_labels(n_tasks: int, ways: int, per_class: int, device: torch.device) -> torch.Tensor:
    """(T, ways * per_class) class-major labels: 0 repeated ``per_class`` times, then 1, …"""
    return torch.arange(ways, device=device).repeat_interleave(per_class).expand(n_tasks, -1)
