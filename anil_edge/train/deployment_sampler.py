"""Training tasks drawn as a device meets them (``train_tasks="deployment"``, issue 27 item 2).

A device enrolls look-alike classes (one shop's products, one alphabet's letters) from photos
taken by someone other than whoever takes the queries. Random training tasks teach neither:
their classes come from anywhere, their support and query from the same drawers. Here every
task's classes come from one group, and where the data records drawers (emoji designers,
Omniglot's drawers) its support and query images are by different ones, as in the export's
calibration and ``anil-edge evaluate --within-group --distinct-drawers``
(:func:`anil_edge.data.tasks.fixed_tasks`, which draws each task).

Where no group holds ``ways`` classes (a flat folder, where each class is its own group) the
classes come from anywhere, still with support and query by different drawers where recorded:
the same fallback as validation's (:func:`anil_edge.train.loop._within_group_tasks`).

Each task's seed comes from Python's ``random``, whose state the task stream swaps in
(:mod:`.streams`): runs are seeded, and resume exactly, as with the learn2learn sampler.
"""

from __future__ import annotations

import random

import numpy as np

from ..data.image_set import ImageSet
from ..data.tasks import TaskIndices, fixed_tasks
from ..errors import InputError

MAX_DRAWS = 50  # draws per task before giving up (a task whose classes share no drawer is drawn again)


class DeploymentTaskSampler:
    """``ways``-way tasks of one group's classes (where a group has that many), support and query
    by different drawers (where recorded)."""

    def __init__(self, data: ImageSet, *, ways: int, shots: int, queries: int, name: str = "training set") -> None:
        self.data, self.ways, self.shots, self.queries, self.name = data, ways, shots, queries, name
        self.distinct = data.drawers is not None
        self.within_group = max(np.unique(data.groups, return_counts=True)[1], default=0) >= ways
        self.sample(1, random.Random(0))  # refuse impossible tasks now, not mid-run

    def sample(self, n_tasks: int, rng: random.Random | None = None) -> TaskIndices:
        """``n_tasks`` tasks, drawn with ``rng`` (default: the global ``random``, the stream's)."""
        tasks = [self._one(rng or random) for _ in range(n_tasks)]
        return TaskIndices(*(np.concatenate([getattr(t, f) for t in tasks])
                             for f in ("support", "support_labels", "query", "query_labels")))

    def _one(self, rng) -> TaskIndices:
        problem = ""
        for _ in range(MAX_DRAWS):
            try:
                return fixed_tasks(self.data, ways=self.ways, shots=self.shots, queries=self.queries, tasks=1,
                                   seed=rng.getrandbits(63), name=self.name, within_group=self.within_group,
                                   distinct_drawers=self.distinct)
            except InputError as exc:
                problem = str(exc)
        raise InputError(f"train_tasks 'deployment': no task could be drawn in {MAX_DRAWS} tries ({problem}); "
                         "use fewer ways or shots, or train_tasks 'random'")
