"""The INT8-vs-FP32 check's measures and thresholds, on embeddings made to agree or not."""

from __future__ import annotations

import numpy as np
import pytest

from anil_edge.errors import ModelError
from anil_edge.export.int8_check import Int8QualityError, check_int8, compare_int8


class FakeBackbone:
    """Stands for a Backbone: fixed embeddings for images that are row indices."""

    def __init__(self, embeddings: np.ndarray) -> None:
        self.embeddings = embeddings

    def embed(self, images: np.ndarray) -> np.ndarray:
        return self.embeddings[images[:, 0, 0, 0]]


def _classes(n_classes=10, per_class=8, dim=16, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 1, (n_classes, dim))
    E = np.repeat(centres, per_class, axis=0) + rng.normal(0, 0.2, (n_classes * per_class, dim))
    images = np.arange(len(E)).reshape(-1, 1, 1, 1)
    return E.astype(np.float32), images, np.repeat(np.arange(n_classes), per_class)


def test_a_faithful_int8_model_passes():
    E, images, labels = _classes()
    noisy = E + np.random.default_rng(1).normal(0, 1e-3, E.shape).astype(np.float32)
    report = check_int8(FakeBackbone(E), FakeBackbone(noisy), images, labels)
    assert report.median_cosine > 0.999 and report.ncm_agreement == 1.0 and report.images == len(E)


def test_every_failed_measure_is_listed():
    E, images, labels = _classes()
    rng = np.random.default_rng(2)
    broken = E + rng.normal(0, 1.5, E.shape).astype(np.float32)  # saturation-like damage
    with pytest.raises(Int8QualityError) as caught:
        check_int8(FakeBackbone(E), FakeBackbone(broken), images, labels)
    message = str(caught.value)
    assert "median embedding cosine" in message and "1st-percentile" in message and "nearest-class-mean" in message
    assert isinstance(caught.value, ModelError)


def test_a_few_wrecked_images_fail_even_when_the_median_is_fine():
    E, images, labels = _classes()
    bad = E.copy()
    bad[:3] = -bad[:3]  # 3 of 80 images flipped
    report = compare_int8(FakeBackbone(E), FakeBackbone(bad), images, labels)
    assert report.median_cosine > 0.999 and any("1st-percentile" in p for p in report.problems())


def test_without_labels_only_the_cosines_are_checked():
    E, images, _ = _classes()
    report = compare_int8(FakeBackbone(E), FakeBackbone(E), images)
    assert report.ncm_agreement is None and not report.problems()
