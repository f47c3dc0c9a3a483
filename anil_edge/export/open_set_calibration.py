"""Open-set thresholds, calibrated on validation classes through the exported model itself.

Episodes drawn from classes the model never trained on: ``ways`` classes are enrolled with
``shots`` images each; ``queries`` other images of each enrolled class are "known" queries,
and as many images of other, never-enrolled classes are "unknown" ones. Each query's open-set
score (:func:`anil_edge.runtime.open_set.open_set_scores`) is computed from the deployed
embeddings (onnxruntime, one image at a time); the threshold for a false-accept rate r is the
score that a share r of unknown queries reaches.

A rate is claimed only where the data can tell it: at least :data:`MIN_TAIL_IMAGES` distinct
never-enrolled images are expected above its threshold (``images × rate``). Fewer images
repeat in every episode, and the 1% and 5% thresholds come out the same: 6 classes of 5
images claim neither rate, 100 images claim 5%, 500 claim 1% as well.
"""

from __future__ import annotations

import os
from dataclasses import replace

import numpy as np

from ..data.image_set import ImageSet
from ..runtime.backbone import Backbone
from ..runtime.open_set import TARGET_RATES, OpenSetCalibration, calibrate, open_set_scores
from .onnx_export import rewrite_metadata

EPISODES, WAYS, SHOTS, QUERIES = 300, 5, 1, 5
MIN_TAIL_IMAGES = 5  # distinct unknown images expected beyond a threshold for its rate to be claimed


def calibrate_open_set(embeddings: np.ndarray, data: ImageSet, *, episodes: int = EPISODES,
                       ways: int = WAYS, shots: int = SHOTS, queries: int = QUERIES,
                       seed: int = 0) -> OpenSetCalibration | None:
    """Thresholds from the deployed ``embeddings`` (M, D) of ``data`` (validation classes, embedded
    by the exported model); None when ``data`` is too
    small (fewer than ways + 1 classes with more than ``shots`` images, or too few images to claim
    any rate: :func:`claimable_rates`). A class with fewer than shots + queries images (four
    designers' emoji) gives the queries it has."""
    members = [np.flatnonzero(data.labels == c) for c in range(data.n_classes)]
    usable = [c for c, m in enumerate(members) if m.size > shots]
    rates = claimable_rates(sum(members[c].size for c in usable))
    if len(usable) < ways + 1 or not rates:
        return None
    E = embeddings
    rng = np.random.default_rng(seed)
    known, unknown = [], []
    for _ in range(episodes):
        classes = rng.choice(usable, min(len(usable), 2 * ways), replace=False)
        enrolled, others = classes[:ways], classes[ways:]
        picks = [rng.choice(members[c], min(members[c].size, shots + queries), replace=False) for c in enrolled]
        means = np.stack([E[p[:shots]].mean(axis=0) for p in picks])
        known.append(open_set_scores(E[np.concatenate([p[shots:] for p in picks])], means))
        strangers = np.concatenate([rng.choice(members[c], min(members[c].size, queries), replace=False)
                                    for c in others])
        unknown.append(open_set_scores(E[strangers], means))
    return calibrate(np.concatenate(known), np.concatenate(unknown), episodes=episodes, ways=ways, shots=shots,
                     rates=rates)


def claimable_rates(images: int) -> tuple[float, ...]:
    """The target false-accept rates that ``images`` distinct never-enrolled images can tell apart."""
    return tuple(r for r in TARGET_RATES if images * r >= MIN_TAIL_IMAGES)


def add_calibration(model_path: str | os.PathLike[str], data: ImageSet) -> OpenSetCalibration | None:
    """Calibrate ``model_path`` on ``data`` and record the result in its metadata (in place)."""
    backbone = Backbone(model_path, device="cpu", batch_size=256, allow_inexact=True)
    calibration = calibrate_open_set(backbone.embed(data.images), data)
    if calibration is not None:
        rewrite_metadata(model_path, replace(backbone.metadata, open_set=calibration))
    return calibration
