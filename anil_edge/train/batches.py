"""From task indices to the normalised, optionally distorted image tensors a meta-step consumes.

The normalisation is the runtime's (:func:`anil_edge.runtime.preprocess.to_input` on uint8
pixels): scale to [0, 1], invert if the model says so, subtract the mean, divide by the std —
so that training sees exactly what a device will feed the exported backbone.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..data.image_set import ImageSet
from ..data.tasks import TaskIndices
from ..runtime.metadata import Preprocessing
from .augment import random_affine, random_strokes


@dataclass(frozen=True, eq=False)
class TaskBatch:
    """A meta-batch of T tasks on the training device, images normalised."""

    support: torch.Tensor  # (T, Ns, C, H, W)
    support_labels: torch.Tensor  # (T, Ns) int64 in [0, ways)
    query: torch.Tensor  # (T, Nq, C, H, W)
    query_labels: torch.Tensor  # (T, Nq)
    prefixed: bool = False  # support and query hold the frozen prefix's activations (.prefix_cache), not images


def normalisation_stats(data: ImageSet, invert: bool) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and std of ``data``'s pixels in [0, 1] (after inversion), from a 256-bin
    histogram per channel — exact, without a float copy of the whole set."""
    channels = data.images.shape[-1]
    counts = np.stack([np.bincount(data.images[..., c].ravel(), minlength=256) for c in range(channels)])
    values = np.arange(256) / 255.0
    if invert:
        values = 1.0 - values
    n = counts.sum(axis=1)
    mean = counts @ values / n
    std = np.sqrt(np.maximum(counts @ values**2 / n - mean**2, 0.0))
    return tuple(float(v) for v in mean), tuple(float(max(v, 1e-3)) for v in std)


class BatchMaker:
    """Holds a set's pixels on the training device and turns :class:`TaskIndices` into tensors."""

    def __init__(self, data: ImageSet, prep: Preprocessing, device: torch.device) -> None:
        self.pixels = torch.from_numpy(data.images).to(device).permute(0, 3, 1, 2)  # (M, C, H, W) uint8
        self.invert = prep.invert
        self.mean = torch.tensor(prep.mean, device=device).view(1, -1, 1, 1)
        self.std = torch.tensor(prep.std, device=device).view(1, -1, 1, 1)
        self.device = device

    def flat(self, indices: np.ndarray | torch.Tensor) -> torch.Tensor:
        """``indices`` of any shape as one flat int64 tensor on the training device."""
        if isinstance(indices, torch.Tensor):  # the device sampler's: already there
            return indices.reshape(-1).to(self.device)
        return torch.from_numpy(np.ascontiguousarray(indices).reshape(-1)).to(self.device)

    def images(self, indices: np.ndarray | torch.Tensor, augment: bool = False,
               generator: torch.Generator | None = None, strokes: bool = False) -> torch.Tensor:
        """Normalised float32 images, shape ``indices.shape + (C, H, W)``; ``augment`` distorts
        each with a random affine map, ``strokes`` also varies its stroke width and warps it
        elastically (:mod:`.augment`)."""
        x = self.pixels[self.flat(indices)].float() / 255.0
        if self.invert:
            x = 1.0 - x
        if augment:
            x = random_strokes(x, generator=generator) if strokes else random_affine(x, generator=generator)
        x = (x - self.mean) / self.std
        return x.view(*indices.shape, *x.shape[1:])

    def tasks(self, tasks: TaskIndices, augment: bool = False, generator: torch.Generator | None = None,
              strokes: bool = False) -> TaskBatch:
        lab = lambda a: torch.from_numpy(a).to(self.device)  # noqa: E731
        return TaskBatch(
            support=self.images(tasks.support, augment, generator, strokes), support_labels=lab(tasks.support_labels),
            query=self.images(tasks.query, augment, generator, strokes), query_labels=lab(tasks.query_labels),
        )
