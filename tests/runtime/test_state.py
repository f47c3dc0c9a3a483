"""The enrollment state file: round trip, atomic saves, backbone binding, corrupted files."""

from __future__ import annotations

import io
import json
from unittest import mock

import numpy as np
import pytest

import anil_edge.atomic as atomic_module
from anil_edge.errors import StateError
from anil_edge.runtime import FewShotClassifier
from anil_edge.runtime import state as state_module
from tests.helpers import atomic_write_with, glyphs
from tests.tolerances import HEAD_TERMS, assert_f32_close


@pytest.fixture
def enrolled(backbone):
    images, labels = glyphs(3, 4, seed=21)
    clf = FewShotClassifier(backbone, threshold=0.3, adaptation_lr=0.25, adaptation_steps=3, head_init="prototype")
    for c in range(3):
        clf.enroll(f"person {c}", images[labels == c])
    return clf, images


@pytest.mark.parametrize("label_kind", [str, int])
def test_round_trip_restores_labels_settings_and_predictions(backbone, tmp_path, label_kind):
    images, labels = glyphs(3, 4, seed=22)
    clf = FewShotClassifier(backbone, threshold=0.3, adaptation_lr=0.25, adaptation_steps=3, head_scale=0.1,
                            head_decay=0.5)  # the whole rule, scale and pull included, travels with the state
    for c in (2, 0, 1):
        clf.enroll(label_kind(c), images[labels == c])
    clf.save(tmp_path / "s.npz")
    again = FewShotClassifier.load(tmp_path / "s.npz", backbone)
    assert again.labels == clf.labels and all(type(x) is label_kind for x in again.labels)
    assert again.adaptation == clf.adaptation and again.threshold == clf.threshold
    assert again.support_counts() == clf.support_counts()
    np.testing.assert_array_equal(again.predict_proba(images), clf.predict_proba(images))


def test_state_is_plain_npz_without_pickle(enrolled, tmp_path):
    clf, _ = enrolled
    clf.save(tmp_path / "s.npz")
    with np.load(tmp_path / "s.npz", allow_pickle=False) as archive:
        assert sorted(archive.files) == ["class_index", "embeddings", "header"]
        header = json.loads(archive["header"].tobytes())
    assert header["format"] == "anil-edge-state" and header["version"] == state_module.STATE_VERSION == 3
    assert header["backbone_sha256"] == clf.backbone.metadata.backbone_sha256


def test_interrupted_save_leaves_the_previous_state_intact(enrolled, tmp_path):
    clf, images = enrolled
    path = tmp_path / "s.npz"
    clf.save(path)
    before = path.read_bytes()
    clf.enroll("newcomer", images[:2])

    def crash_midway(handle_write):
        def write(data):
            handle_write(bytes(data)[: len(data) // 2])
            raise KeyboardInterrupt("power cut")

        return write

    crashing_atomic = atomic_write_with(crash_midway)

    with mock.patch.object(atomic_module, "atomic_write", crashing_atomic), pytest.raises(KeyboardInterrupt):
        clf.save(path)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == [".s.npz.lock", "s.npz"]  # no temporary file left
    assert "newcomer" not in FewShotClassifier.load(path, clf.backbone).labels


def test_state_of_another_backbone_is_refused_even_when_it_copies_the_metadata(enrolled, tmp_path):
    """The binding hashes what the runtime runs: other weights under copied metadata do not match."""
    import onnx

    from anil_edge.runtime import Backbone

    clf, _ = enrolled
    clf.save(tmp_path / "s.npz")
    model = onnx.load(str(clf.backbone.path))
    weights = next(t for t in model.graph.initializer if t.raw_data)
    weights.raw_data = bytes(len(weights.raw_data))  # other weights; metadata_props left as they were
    onnx.save(model, str(tmp_path / "impostor.onnx"))
    impostor = Backbone(tmp_path / "impostor.onnx")
    assert impostor.metadata.backbone_sha256 == clf.backbone.metadata.backbone_sha256  # the copied claim
    assert impostor.sha256 != clf.backbone.sha256
    with pytest.raises(StateError, match="was enrolled with backbone .* but this model's backbone is"):
        FewShotClassifier.load(tmp_path / "s.npz", impostor)


def test_the_runtime_hash_equals_the_exporters(backbone):
    assert backbone.sha256 == backbone.metadata.backbone_sha256


def test_truncated_corrupted_and_foreign_files_are_clear_errors(enrolled, tmp_path):
    clf, _ = enrolled
    clf.save(tmp_path / "s.npz")
    data = (tmp_path / "s.npz").read_bytes()
    cases = {
        "truncated.npz": data[: len(data) // 2],
        "flipped.npz": data[:200] + bytes(b ^ 0xFF for b in data[200:260]) + data[260:],
        "garbage.npz": b"\x00" * 100,
        "empty.npz": b"",
    }
    for name, content in cases.items():
        (tmp_path / name).write_bytes(content)
        with pytest.raises(StateError, match="truncated or corrupted|not an anil-edge state"):
            FewShotClassifier.load(tmp_path / name, clf.backbone)
    with pytest.raises(StateError, match="state file not found"):
        FewShotClassifier.load(tmp_path / "missing.npz", clf.backbone)


def write_npz(path, **members):
    buffer = io.BytesIO()
    np.savez(buffer, **members)
    path.write_bytes(buffer.getvalue())


def test_pickled_and_inconsistent_contents_are_refused(enrolled, tmp_path):
    clf, _ = enrolled
    clf.save(tmp_path / "s.npz")
    with np.load(tmp_path / "s.npz") as archive:
        good = {k: archive[k] for k in archive.files}
    header = json.loads(good["header"].tobytes())

    def with_header(**changes):
        return np.frombuffer(json.dumps({**header, **changes}).encode(), np.uint8)

    cases = [
        (dict(good, embeddings=np.array([object()], dtype=object)), "truncated or corrupted"),  # would need pickle
        ({k: v for k, v in good.items() if k != "class_index"}, "missing \\['class_index'\\]"),
        (dict(good, header=with_header(version=7)), "state version 7"),
        (dict(good, header=with_header(labels=["a", "a", "b"])), "distinct labels"),
        (dict(good, header=with_header(labels=["a", 1, "b"])), "labels of mixed types"),
        (dict(good, class_index=np.zeros_like(good["class_index"])), "every one of the 3 labels needs"),
        (dict(good, embeddings=good["embeddings"][:, :5]), "expected \\(M, 32\\)"),
        (dict(good, embeddings=good["embeddings"].astype(np.float64)), "embeddings must be float32"),
        (dict(good, header=with_header(adaptation={**header["adaptation"], "adaptation_steps": -2})),
         "adaptation_steps must lie in"),
        (dict(good, header=with_header(adaptation={**header["adaptation"], "adaptation_steps": 10**9})),
         "adaptation_steps must lie in"),
        (dict(good, header=with_header(adaptation={**header["adaptation"], "adaptation_lr": 3e38})),
         "adaptation_lr must be a finite number"),
        (dict(good, header=with_header(threshold="0.5")), "threshold must be a number"),
    ]
    for k, (members, message) in enumerate(cases):
        write_npz(tmp_path / f"bad{k}.npz", **members)
        with pytest.raises(StateError, match=message):
            FewShotClassifier.load(tmp_path / f"bad{k}.npz", clf.backbone)


def test_unwritable_destination_is_a_clear_error(enrolled, tmp_path):
    clf, _ = enrolled
    with pytest.raises(StateError, match="cannot write the state file"):
        clf.save(tmp_path / "no" / "such" / "dir" / "s.npz")


def test_a_state_written_by_release_0_1_still_loads_and_predicts_the_same():
    """tests/data/v1_*: a model (metadata format 1) and a state (version 1) written by anil-edge
    0.1.0, with the probabilities it predicted for the saved queries."""
    from pathlib import Path

    from anil_edge.runtime import Backbone

    data = Path(__file__).parents[1] / "data"
    backbone = Backbone(data / "v1_model.onnx")
    clf = FewShotClassifier.load(data / "v1_state.npz", backbone)
    assert clf.labels == ["class0", "class1", "class2"] and clf.threshold == 0.25
    assert (clf.adaptation.head_init, clf.adaptation.adaptation_steps) == ("learned", 3)  # 0.1's "mean"
    expected = np.load(data / "v1_probabilities.npy")
    # stored by another machine: its embeddings and head steps against this CPU's (probabilities: scale 1)
    assert_f32_close(clf.predict_proba(np.load(data / "v1_queries.npy")), expected, terms=HEAD_TERMS, scale=1.0)
