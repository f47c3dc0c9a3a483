"""Synthetic block glyphs: tiny, deterministic classes for smoke runs and tests (numpy only)."""

from __future__ import annotations

import numpy as np


def block_glyphs(n_classes: int, per_class: int, seed: int = 0, noise: float = 0.03) -> tuple[np.ndarray, np.ndarray]:
    """Each class a random 7×7 block pattern upscaled to 28×28; instances flip ``noise`` of the pixels.

    Returns:
        images: uint8 (n_classes · per_class, 28, 28), dark ink (0) on white (255);
        labels: int (n_classes · per_class,), class-major order.
    """
    rng = np.random.default_rng(seed)
    images, labels = [], []
    for c in range(n_classes):
        base = np.kron(rng.random((7, 7)) < 0.35, np.ones((4, 4), bool))
        for _ in range(per_class):
            flipped = base ^ (rng.random((28, 28)) < noise)
            images.append(np.where(flipped, 0, 255).astype(np.uint8))
            labels.append(c)
    return np.stack(images), np.array(labels)
