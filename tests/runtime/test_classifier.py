"""Enrollment and prediction: any number of classes, cached embeddings, unknowns, bad input."""

from __future__ import annotations

import numpy as np
import pytest

from anil_edge.errors import InputError, NotEnrolledError
from anil_edge.runtime import FewShotClassifier, head
from anil_edge.runtime.adaptation import Adaptation
from anil_edge.runtime.episodes import initial_head
from tests.helpers import DIM, WAYS, glyphs
from tests.tolerances import HEAD_TERMS, assert_f32_close


class CountingBackbone:
    """Wraps the real backbone and counts the images it embeds."""

    def __init__(self, backbone):
        self.inner, self.embedded = backbone, 0
        self.metadata, self.embedding_dim = backbone.metadata, backbone.embedding_dim

    def embed(self, images):
        out = self.inner.embed(images)
        self.embedded += len(out)
        return out


@pytest.mark.parametrize("n_classes", [2, WAYS, 9])
def test_enrolls_any_number_of_classes_and_recognises_new_instances(backbone, n_classes):
    images, labels = glyphs(n_classes, 6, seed=n_classes)
    # The fixture backbone is untrained: its embeddings share a large common component, so
    # gradient steps would fit the 3 supports' noise; the prototype head alone separates them.
    clf = FewShotClassifier(backbone, head_init="prototype", adaptation_steps=0)
    for c in range(n_classes):
        clf.enroll(f"class-{c}", images[labels == c][:3])
    queries = images.reshape(n_classes, 6, 28, 28)[:, 3:].reshape(-1, 28, 28)
    truth = [f"class-{c}" for c in range(n_classes) for _ in range(3)]
    predictions = clf.predict(queries)
    accuracy = np.mean([p.label == t for p, t in zip(predictions, truth)])
    assert clf.labels == [f"class-{c}" for c in range(n_classes)]
    assert clf.predict_proba(queries).shape == (len(queries), n_classes)
    assert accuracy >= 0.8, f"{accuracy=} on well-separated synthetic glyphs"


def test_head_is_anils_inner_loop_on_the_cached_embeddings(backbone):
    images, labels = glyphs(3, 4, seed=5)
    clf = FewShotClassifier(backbone, head_init="prototype", adaptation_lr=0.3, adaptation_steps=4)
    for c in range(3):
        clf.enroll(c, images[labels == c])
    E = backbone.embed(images)
    protos = np.stack([E[labels == c].mean(0) for c in range(3)])
    W0, b0 = initial_head(Adaptation(head_init="prototype"), backbone.metadata.learned_head, protos)
    W, b = head.adapt(E, labels, W0, b0, lr=0.3, steps=4)
    got_W, got_b = clf.fit()
    assert_f32_close(got_W, W, terms=HEAD_TERMS)
    assert_f32_close(got_b, b, terms=HEAD_TERMS, scale=float(np.abs(W).max()))
    assert_f32_close(W0, 2 * protos, terms=4)


@pytest.mark.parametrize("rule", ["zeros", "learned", "prototype"])
def test_head_init_rules(backbone, rule):
    protos = np.random.default_rng(0).normal(size=(7, DIM)).astype(np.float32)
    W, b = initial_head(Adaptation(head_init=rule), backbone.metadata.learned_head, protos)
    assert W.shape == (7, DIM) and b.shape == (7,) and W.dtype == np.float32
    if rule == "learned":  # a device's classes share no order with the training ways: the mean row
        assert_f32_close(W[3], backbone.metadata.learned_head.weight.mean(0), terms=8)  # a mean of 5 rows
    if rule == "zeros":
        assert not W.any() and not b.any()


def test_new_examples_and_classes_do_not_re_embed_old_ones(backbone):
    images, labels = glyphs(3, 4, seed=7)
    counting = CountingBackbone(backbone)
    clf = FewShotClassifier(counting)
    assert clf.enroll("a", images[labels == 0][:2]) == 2
    clf.enroll("b", images[labels == 1])
    clf.enroll("a", images[labels == 0][2:])  # more examples for an existing class
    clf.enroll("c", images[labels == 2][0])  # a new class with a single image
    assert counting.embedded == 2 + 4 + 2 + 1
    assert clf.support_counts() == {"a": 4, "b": 4, "c": 1}
    clf.remove("b")
    assert clf.labels == ["a", "c"] and counting.embedded == 9
    assert clf.predict_proba(images[:2]).shape == (2, 2)


def test_unknown_below_threshold(backbone):
    images, labels = glyphs(4, 3, seed=11)
    clf = FewShotClassifier(backbone, threshold=0.0)
    for c in range(4):
        clf.enroll(c, images[labels == c])
    probs = clf.predict_proba(images)
    assert all(p.label is not None for p in clf.predict(images))
    clf.configure(threshold=float(probs.max(1).min()) + 1e-6)
    predictions = clf.predict(images)
    unknown = [p for p in predictions if p.label is None]
    assert 1 <= len(unknown) < len(predictions)
    assert all(p.best_label in clf.labels and p.probability < clf.threshold for p in unknown)


def test_bad_enrollment_and_prediction_are_clear_errors(backbone):
    clf = FewShotClassifier(backbone)
    with pytest.raises(NotEnrolledError, match="no class is enrolled yet"):
        clf.predict(np.zeros((28, 28), np.uint8))
    with pytest.raises(InputError, match="no images given"):
        clf.enroll("a", [])
    with pytest.raises(InputError, match="the support set is empty"):
        clf.enroll_embeddings("a", np.zeros((0, DIM)))
    clf.enroll("a", np.zeros((28, 28), np.uint8))
    with pytest.raises(InputError, match="labels of mixed types: the enrolled labels are str .* found int 3"):
        clf.enroll(3, np.zeros((28, 28), np.uint8))
    for bad in (None, 2.5, True, "  "):
        with pytest.raises(InputError, match="label"):
            clf.enroll(bad, np.zeros((28, 28), np.uint8))
    with pytest.raises(InputError, match=f"embeddings must be \\(n, {DIM}\\)"):
        clf.enroll_embeddings("b", np.zeros((2, DIM + 1)))
    with pytest.raises(InputError, match="cannot remove 'zzz': not enrolled"):
        clf.remove("zzz")
    with pytest.raises(InputError, match="threshold must lie in \\[0, 1\\]"):
        clf.configure(threshold=1.5)
    with pytest.raises(InputError, match="head_init must be one of"):
        FewShotClassifier(backbone, head_init="random")
    with pytest.raises(InputError, match="unknown settings"):
        clf.configure(learning_rate=1.0)
