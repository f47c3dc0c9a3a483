"""The app-developer API: bulk and folder enrollment, de-duplication, top-k, open-set rejection,
onnxruntime options, the container protocol."""

from __future__ import annotations

import numpy as np
import pytest

from anil_edge.errors import InputError
from anil_edge.runtime import Backbone, FewShotClassifier
from anil_edge.runtime.open_set import OpenSetCalibration, calibrate, cosine_to_means, open_set_scores
from tests.helpers import DIM, glyphs
from tests.tolerances import HEAD_TERMS, assert_f32_close, conv_terms
from tests.train.helpers import glyph_set, write_folder


def test_enroll_many_groups_a_labelled_batch(backbone):
    images, labels = glyphs(3, 3, seed=2)
    names = np.array(["x", "y", "z"])[labels]
    clf = FewShotClassifier(backbone)
    assert clf.enroll_many(images, names) == {"x": 3, "y": 3, "z": 3}
    one_by_one = FewShotClassifier(backbone)
    for name in ("x", "y", "z"):
        one_by_one.enroll(name, images[names == name])
    assert_f32_close(clf.fit()[0], one_by_one.fit()[0], terms=conv_terms(32, 4) + HEAD_TERMS)
    with pytest.raises(InputError, match="9 images but 2 labels"):
        FewShotClassifier(backbone).enroll_many(images, ["x", "y"])
    with pytest.raises(InputError, match="mixed types"):
        FewShotClassifier(backbone).enroll_many(images[:2], ["x", 1])


def test_enroll_folder_uses_the_folder_names(backbone, tmp_path):
    root = write_folder(tmp_path / "classes", {"alpha": 2, "beta": 3}, size=28)
    clf = FewShotClassifier(backbone)
    assert clf.enroll_folder(root) == {"alpha": 2, "beta": 3}
    assert clf.labels == ["alpha", "beta"] and len(clf) == 2 and "beta" in clf and "gamma" not in clf
    assert clf.enroll_folder(root, deduplicate=True) == {"alpha": 0, "beta": 0}  # the same files again
    assert clf.support_counts() == {"alpha": 2, "beta": 3}
    assert clf.enroll_folder(root) == {"alpha": 2, "beta": 3} and clf.support_counts()["beta"] == 6


def test_deduplication_keeps_new_examples(backbone):
    images, labels = glyphs(1, 4, seed=5)
    clf = FewShotClassifier(backbone)
    assert clf.enroll("a", images[:2]) == 2
    assert clf.enroll("a", images[:3], deduplicate=True) == 1  # two already there, one new
    assert clf.enroll("a", np.stack([images[3], images[3]]), deduplicate=True) == 1  # duplicates within a batch
    assert clf.support_counts() == {"a": 4}


def test_top_k_lists_the_most_probable_classes(backbone):
    images, labels = glyphs(4, 2, seed=8)
    clf = FewShotClassifier(backbone)
    clf.enroll_many(images, labels)
    (p,) = clf.predict(images[:1], top_k=3)
    probs = clf.predict_proba(images[:1])[0]
    assert [label for label, _ in p.top] == list(np.argsort(-probs)[:3])
    assert p.top[0] == (p.best_label, pytest.approx(p.probability))
    assert len(clf.predict(images[:1], top_k=10)[0].top) == 4  # at most the enrolled classes
    with pytest.raises(InputError, match="top_k"):
        clf.predict(images[:1], top_k=0)


def test_repr_says_what_is_enrolled(backbone):
    clf = FewShotClassifier(backbone)
    clf.enroll("a", np.zeros((28, 28), np.uint8))
    text = repr(clf)
    assert "1 classes" in text and "'a': 1" in text and "head_init='learned'" in text


def test_open_set_score_is_the_cosine_to_the_nearest_mean():
    rng = np.random.default_rng(0)
    E, means = rng.normal(size=(5, 8)).astype(np.float32), rng.normal(size=(3, 8)).astype(np.float32)
    expected = [max(float(e @ m / np.linalg.norm(e) / np.linalg.norm(m)) for m in means) for e in E]
    assert_f32_close(open_set_scores(E, means), expected, terms=4 * 8)  # cosines of 8-d vectors
    assert cosine_to_means(E, means).shape == (5, 3)


def test_calibration_thresholds_give_the_target_false_accept_rates():
    rng = np.random.default_rng(1)
    known, unknown = rng.normal(0.9, 0.03, 5000), rng.normal(0.8, 0.05, 5000)
    cal = calibrate(known, unknown, episodes=10, ways=5, shots=1)
    for rate in (0.01, 0.05):
        assert (unknown >= cal.thresholds[rate]).mean() == pytest.approx(rate, abs=0.002)
        assert cal.true_accept[rate] == pytest.approx((known >= cal.thresholds[rate]).mean())
    assert cal.thresholds[0.01] >= cal.thresholds[0.05]


@pytest.fixture(scope="module")
def calibrated(model_path, tmp_path_factory):
    """The tiny model with thresholds calibrated on glyph classes by the export's own code."""
    pytest.importorskip("onnx")
    from anil_edge.export.open_set_calibration import add_calibration

    path = tmp_path_factory.mktemp("calibrated") / "model.onnx"
    path.write_bytes(model_path.read_bytes())
    assert add_calibration(path, glyph_set(n_classes=90, per_class=6, seed=3)) is not None  # 540 images: 1% and 5%
    return Backbone(path)


def test_calibration_claims_only_the_rates_its_images_can_tell(model_path, tmp_path):
    """Each claimed rate needs MIN_TAIL_IMAGES (5) distinct never-enrolled images beyond its threshold:
    30 images claim none (the 1% and 5% thresholds would be the same scores), 120 claim 5%."""
    pytest.importorskip("onnx")
    from anil_edge.export.open_set_calibration import add_calibration

    path = tmp_path / "model.onnx"
    path.write_bytes(model_path.read_bytes())
    assert add_calibration(path, glyph_set(n_classes=6, per_class=5, seed=3)) is None
    assert Backbone(path).metadata.open_set is None
    assert set(add_calibration(path, glyph_set(n_classes=20, per_class=6, seed=3)).thresholds) == {0.05}


def test_export_calibration_is_recorded_and_used_by_reject(calibrated):
    cal = calibrated.metadata.open_set
    assert isinstance(cal, OpenSetCalibration) and set(cal.thresholds) == {0.01, 0.05}
    images, labels = glyphs(3, 2, seed=4)
    clf = FewShotClassifier(calibrated, reject=0.05)
    clf.enroll_many(images, labels)
    queries = np.concatenate([images, np.full((1, 28, 28), 255, np.uint8)])
    predictions = clf.predict(queries)
    for p in predictions:
        assert (p.label is None) == (p.score < cal.thresholds[0.05])
    clf.configure(reject=None)
    assert all(p.label is not None for p in clf.predict(queries))
    with pytest.raises(InputError, match="calibrated for false-accept rates"):
        clf.configure(reject=0.02)


def test_reject_is_saved_with_the_state(calibrated, tmp_path):
    images, labels = glyphs(2, 2, seed=6)
    clf = FewShotClassifier(calibrated, reject=0.01)
    clf.enroll_many(images, labels)
    clf.save(tmp_path / "s.npz")
    assert FewShotClassifier.load(tmp_path / "s.npz", calibrated).reject == 0.01


def test_reject_needs_a_calibrated_model(backbone):
    with pytest.raises(InputError, match="has no open-set calibration"):
        FewShotClassifier(backbone, reject=0.05)


def test_onnxruntime_providers_and_session_options(model_path):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    chosen = Backbone(model_path, providers=["CPUExecutionProvider"], session_options=options)
    default = Backbone(model_path)
    images, _ = glyphs(2, 2)
    assert_f32_close(chosen.embed(images), default.embed(images), terms=conv_terms(32, 4))
    assert chosen.providers == ["CPUExecutionProvider"]
    for bad in (["NoSuchExecutionProvider"], "CPUExecutionProvider", [], [3]):
        with pytest.raises(InputError, match="provider"):
            Backbone(model_path, providers=bad)
    with pytest.raises(InputError, match="session_options must be"):
        Backbone(model_path, session_options={"threads": 2})
    assert DIM == default.embedding_dim
