"""BatchNorm statistics for deployment: the population's, not the last meta-batches'.

In training, BatchNorm normalises with the statistics of the images in the current call; the
running averages it keeps on the side are what a device uses, one image at a time. This module
re-estimates them over the training images (a cumulative average over equal chunks, no
augmentation), so that deployed embeddings are normalised as the training batches were, on
average (the "well-estimated statistics" route to per-image embeddings).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from .batches import BatchMaker
from .model import AnilModel


@torch.no_grad()
def recalibrate_batchnorm(model: AnilModel, maker: BatchMaker, max_images: int = 10000, chunk: int = 250,
                          seed: int = 0) -> bool:
    """Reset every BatchNorm's running mean / var to averages over up to ``max_images`` of the
    maker's images (a fixed random subset). Returns False (and changes nothing) without BatchNorm."""
    norms = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    if not norms:
        return False
    n = maker.pixels.shape[0]
    order = np.random.default_rng(seed).permutation(n)[: min(n, max_images)]
    momenta = [m.momentum for m in norms]
    was_training = model.training
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative moving average
    model.train()
    try:
        for i in range(0, order.size - chunk + 1 if order.size >= chunk else 1, chunk):
            model.forward_features(maker.images(order[i : i + chunk]))
    finally:
        for m, momentum in zip(norms, momenta):
            m.momentum = momentum
        model.train(was_training)
    return True
