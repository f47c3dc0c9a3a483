"""Synthetic block glyphs: tiny, deterministic classes for smoke runs and tests (numpy only)."""

from __future__ import annotations

import numpy as np

from anil_edge.data.image_set import ImageSet


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


def nuisance_embeddings(nuisance: float, classes: int = 40, per_class: int = 6,
                        seed: int = 0) -> tuple[np.ndarray, ImageSet]:
    """(M, 16) embeddings of ``classes`` classes in one group, with an ImageSet of blank images
    carrying their labels: 4 dimensions carry the class (spread 1, within-class noise 0.5), 12
    carry within-class noise of spread ``nuisance`` only (a drawer's style, shared by every class)."""
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(classes), per_class)
    E = np.zeros((labels.size, 16), np.float32)
    E[:, :4] = rng.normal(0, 1, (classes, 4))[labels] + rng.normal(0, 0.5, (labels.size, 4))
    E[:, 4:] = rng.normal(0, nuisance, (labels.size, 12))
    data = ImageSet(np.zeros((labels.size, 1, 1, 1), np.uint8), labels, tuple(f"c{c}" for c in range(classes)),
                    ("group",) * classes)
    return E, data
