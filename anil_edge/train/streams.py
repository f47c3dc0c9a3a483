"""Task streams: independent, seeded sources of tasks and augmentations.

A meta-batch is drawn from ``n`` streams, ``meta_batch / n`` tasks each. Under torchrun every
rank owns one stream (its rank), so ranks sample different tasks; a single process can own all
``n`` streams and then sees exactly the tasks and augmentations of an ``n``-rank run — which
is how the distributed run is tested against a single-process one.

learn2learn's task transforms draw from Python's global ``random`` module, so each stream keeps
its own ``random`` state and swaps it in while it samples; the device sampler and augmentations
draw from each stream's own ``torch.Generator`` on the training device.
"""

from __future__ import annotations

import random
from typing import Any

import torch

from ..data.tasks import TaskIndices
from .deployment_sampler import DeploymentTaskSampler
from .task_sampler import TaskSampler


class TaskStreams:
    """The streams a process owns, e.g. ``[rank]`` under torchrun, ``range(n)`` alone."""

    def __init__(self, seed: int, owned: list[int], device: torch.device | None = None) -> None:
        self.owned = list(owned)
        self.python = {s: random.Random(_mix(seed, s)).getstate() for s in self.owned}
        self.torch = {s: torch.Generator(device=device or "cpu").manual_seed(_mix(seed, s)) for s in self.owned}

    def sample(self, sampler: TaskSampler | DeploymentTaskSampler, stream: int, n_tasks: int) -> TaskIndices:
        """``n_tasks`` tasks from ``stream``, leaving the global ``random`` state as it was."""
        outside = random.getstate()
        random.setstate(self.python[stream])
        try:
            return sampler.sample(n_tasks)
        finally:
            self.python[stream] = random.getstate()
            random.setstate(outside)

    def state_dict(self) -> dict[str, Any]:
        """Plain lists and tensors (checkpoint-safe)."""
        return {str(s): {"python": [self.python[s][0], list(self.python[s][1]), self.python[s][2]],
                         "torch": self.torch[s].get_state().cpu()} for s in self.owned}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for s in self.owned:
            version, mt, gauss = state[str(s)]["python"]
            self.python[s] = (version, tuple(mt), gauss)
            self.torch[s].set_state(state[str(s)]["torch"])


def _mix(seed: int, stream: int) -> int:
    return (seed * 1_000_003 + stream * 7919 + 17) % (2**63)
