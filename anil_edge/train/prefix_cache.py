"""The frozen prefix's activations, computed once per training image (issue 27, item 3).

With ``freeze_stages = N`` and frozen BatchNorm, the stem and the first N − 1 stages of a timm
backbone are a fixed function of each image: no gradient reaches them and their statistics do
not move. A meta-step then pays only for the trainable stages if each image's prefix output
(:meth:`AnilModel.forward_prefix`) is kept: the first meta-step to meet an image computes it,
every later one reads it.

Memory is bounded: at most ``max_bytes`` of activations are kept (float32, exactly what the
uncached forward computes); images beyond that are computed each time they are drawn.

Pixel augmentation must be off with the cache (``TrainConfig.prefix_cache`` checks it): a
distortion of the pixels changes the prefix's output, so it cannot be cached, and computing the
prefix for every distorted image is exactly the cost the cache removes.

The cache saves the prefix's *forward* pass only: no backward pass ever ran through frozen
stages (their weights and their input need no gradient). Measured on EfficientNet-Lite0 at
128 px that is little (benchmarks/RESULTS.md, "Prefix cache"), so it is off by default.
"""

from __future__ import annotations

import numpy as np
import torch

from .batches import BatchMaker
from .model import AnilModel


class PrefixCache:
    """Prefix activations of a :class:`BatchMaker`'s images, filled on first use."""

    def __init__(self, model: AnilModel, maker: BatchMaker, max_bytes: int) -> None:
        self.model, self.maker, self.max_bytes = model, maker, max_bytes
        n = maker.pixels.shape[0]
        self.slot = torch.full((n,), -1, dtype=torch.long, device=maker.device)  # image -> row of self.store
        self.store: torch.Tensor | None = None  # (capacity, C', H', W') float32, made on first use
        self.used = 0

    def images(self, indices: np.ndarray | torch.Tensor) -> torch.Tensor:
        """Prefix activations, shape ``indices.shape + (C', H', W')``."""
        unique, inverse = torch.unique(self.maker.flat(indices), return_inverse=True)
        rows = self._rows(unique)
        return rows[inverse].view(*indices.shape, *rows.shape[1:])

    def _rows(self, unique: torch.Tensor) -> torch.Tensor:
        """Activations of distinct images ``unique`` (K,): cached rows, the rest computed (and kept
        while there is room)."""
        slots = self.slot[unique]
        missing = slots < 0
        if not bool(missing.any()):
            return self.store[slots]  # type: ignore[index]
        fresh = self.model.forward_prefix(self.maker.images(unique[missing]))
        self._keep(unique[missing], fresh)
        if self.store is None:
            return fresh
        out = torch.empty((unique.shape[0], *fresh.shape[1:]), dtype=fresh.dtype, device=fresh.device)
        out[missing] = fresh
        hit = ~missing
        if bool(hit.any()):
            out[hit] = self.store[slots[hit]]
        return out

    def _keep(self, images: torch.Tensor, rows: torch.Tensor) -> None:
        if self.store is None:
            per_image = rows[0].numel() * rows.element_size()
            capacity = min(self.slot.shape[0], self.max_bytes // max(per_image, 1))
            if capacity == 0:
                return
            self.store = torch.empty((capacity, *rows.shape[1:]), dtype=rows.dtype, device=rows.device)
        room = min(self.store.shape[0] - self.used, images.shape[0])
        if room <= 0:
            return
        self.store[self.used:self.used + room] = rows[:room]
        self.slot[images[:room]] = torch.arange(self.used, self.used + room, device=self.slot.device)
        self.used += room

    @property
    def cached_images(self) -> int:
        return self.used
