"""Enrollment state files that are corrupted, forged, inconsistent or oversized: StateError,
for every field of the header and every member of the archive."""

from __future__ import annotations

import io
import json
import zipfile

import numpy as np
import pytest

from anil_edge.errors import StateError
from anil_edge.runtime import FewShotClassifier
from anil_edge.runtime import state as state_module
from tests.bad_inputs.helpers import edit
from tests.helpers import glyphs


@pytest.fixture(scope="module")
def saved(backbone, tmp_path_factory):
    images, labels = glyphs(3, 2, seed=9)
    clf = FewShotClassifier(backbone, threshold=0.2)
    for c in range(3):
        clf.enroll(f"c{c}", images[labels == c])
    path = tmp_path_factory.mktemp("state") / "s.npz"
    clf.save(path)
    with np.load(path) as archive:
        members = {k: archive[k] for k in archive.files}
    return json.loads(members["header"].tobytes()), members


def _npz(path, header, members, **changes):
    members = {**members, "header": np.frombuffer(json.dumps(header).encode(), np.uint8), **changes}
    buffer = io.BytesIO()
    np.savez(buffer, **{k: v for k, v in members.items() if v is not None})
    path.write_bytes(buffer.getvalue())
    return path


def _load(path, backbone):
    return FewShotClassifier.load(path, backbone)


def _refusal(path, backbone) -> str:
    with pytest.raises(StateError) as caught:
        _load(path, backbone)
    return str(caught.value)


# One case per nesting depth and per annotation shape of the header (the strict reader is shared
# with the metadata and the config: tests/bad_inputs/test_model_files.py, test_train_config.py).
@pytest.mark.parametrize("path", ["threshold", "adaptation.head_init"])
def test_a_missing_header_field(saved, tmp_path, backbone, path):
    header, members = saved
    assert f"missing field '{path}'" in _refusal(_npz(tmp_path / "s.npz", edit(header, path, delete=True), members),
                                                 backbone)


WRONG_TYPE = {  # path: (value, what the refusal says)
    "backbone_sha256": (5, "backbone_sha256 must be a string, found int 5"),
    "threshold": ("0.5", "threshold must be a number, found str '0.5'"),
    "adaptation.adaptation_steps": (2.5, "adaptation.adaptation_steps must be an integer, found float 2.5"),
    "adaptation": ([1], "adaptation must be an object, found list [1]"),
    "version": (True, "state version True"),
}


@pytest.mark.parametrize("path", WRONG_TYPE)
def test_a_header_field_of_the_wrong_type(saved, tmp_path, backbone, path):
    header, members = saved
    value, message = WRONG_TYPE[path]
    assert message in _refusal(_npz(tmp_path / "s.npz", edit(header, path, value), members), backbone)


ARRAYS = {
    "embeddings-float64": dict(embeddings=lambda m: m["embeddings"].astype(np.float64)),
    "embeddings-narrow": dict(embeddings=lambda m: m["embeddings"][:, :5]),
    "embeddings-1d": dict(embeddings=lambda m: m["embeddings"].ravel()),
    "embeddings-nan": dict(embeddings=lambda m: np.full_like(m["embeddings"], np.nan)),
    "embeddings-inf": dict(embeddings=lambda m: np.full_like(m["embeddings"], np.inf)),
    "embeddings-huge": dict(embeddings=lambda m: np.full_like(m["embeddings"], 1e6)),
    "embeddings-text": dict(embeddings=lambda m: np.array(["a"] * len(m["embeddings"]))),
    "embeddings-missing": dict(embeddings=lambda m: None),
    "class-index-missing": dict(class_index=lambda m: None),
    "class-index-float": dict(class_index=lambda m: m["class_index"].astype(np.float32)),
    "class-index-short": dict(class_index=lambda m: m["class_index"][:-1]),
    "class-index-out-of-range": dict(class_index=lambda m: m["class_index"] + 5),
    "class-index-negative": dict(class_index=lambda m: m["class_index"] - 1),
    "class-index-one-class-empty": dict(class_index=lambda m: np.zeros_like(m["class_index"])),
    "header-missing": dict(header=lambda m: None),
    "header-not-json": dict(header=lambda m: np.frombuffer(b"{not json", np.uint8)),
    "header-not-utf8": dict(header=lambda m: np.frombuffer(b"\xff\xfe\x00", np.uint8)),
    "header-a-list": dict(header=lambda m: np.frombuffer(b"[1, 2]", np.uint8)),
    "header-floats": dict(header=lambda m: np.zeros(4, np.float32)),
}


@pytest.mark.parametrize("name", ARRAYS)
def test_a_bad_member(saved, tmp_path, backbone, name):
    header, members = saved
    ((member, change),) = ARRAYS[name].items()
    members = {**members, "header": np.frombuffer(json.dumps(header).encode(), np.uint8)}
    members[member] = change(members)
    buffer = io.BytesIO()
    np.savez(buffer, **{k: v for k, v in members.items() if v is not None})
    (tmp_path / "s.npz").write_bytes(buffer.getvalue())
    assert member in _refusal(tmp_path / "s.npz", backbone)  # the message names the member at fault


LABELS = {"duplicates": ["a", "a", "b"], "mixed": ["a", 1, "b"], "too-few": ["a", "b"], "too-many": ["a", "b", "c", "d"],
          "empty-string": ["", "b", "c"], "floats": [1.5, 2.5, 3.5], "nested": [["a"], "b", "c"], "bools": [True, False, True]}


@pytest.mark.parametrize("name", LABELS)
def test_bad_labels(saved, tmp_path, backbone, name):
    header, members = saved
    assert "label" in _refusal(_npz(tmp_path / "s.npz", {**header, "labels": LABELS[name]}, members), backbone)


def test_pickled_objects_are_never_unpickled(saved, tmp_path, backbone):
    header, members = saved
    path = _npz(tmp_path / "s.npz", header, members, embeddings=np.array([object()] * 6, dtype=object))
    with pytest.raises(StateError):
        _load(path, backbone)


@pytest.mark.parametrize("content", [b"", b"PK", b"not a zip at all", b"\x93NUMPY" + b"\0" * 100],
                         ids=["empty", "zip-magic-only", "text", "a-bare-npy"])
def test_files_that_are_not_states(tmp_path, backbone, content):
    (tmp_path / "s.npz").write_bytes(content)
    with pytest.raises(StateError):
        _load(tmp_path / "s.npz", backbone)


def test_members_that_are_not_npy_data(tmp_path, backbone):
    with zipfile.ZipFile(tmp_path / "s.npz", "w") as archive:
        for name in ("header.npy", "embeddings.npy", "class_index.npy"):
            archive.writestr(name, b"this is not npy data")
    with pytest.raises(StateError, match="truncated or corrupted"):
        _load(tmp_path / "s.npz", backbone)


def test_a_member_header_declaring_more_than_it_holds_is_refused_before_any_allocation(saved, tmp_path, backbone):
    """A few KB whose embeddings header says 10^12 rows: numpy would allocate terabytes (a raw
    MemoryError) before reading a byte."""
    header, members = saved
    good = _npz(tmp_path / "good.npz", header, members)
    with zipfile.ZipFile(good) as src, zipfile.ZipFile(tmp_path / "s.npz", "w") as out:
        for info in src.infolist():
            data = src.read(info)
            if info.filename == "embeddings.npy":
                data = data.replace(str(members["embeddings"].shape).encode(), b"(1000000000000, 32)", 1)
            out.writestr(info.filename, data)
    with pytest.raises(StateError, match=r"member embeddings.npy declares shape \(1000000000000, 32\)"):
        _load(tmp_path / "s.npz", backbone)


def test_a_zip_bomb_is_refused_before_it_expands(tmp_path, backbone, monkeypatch):
    monkeypatch.setattr(state_module, "MAX_STATE_BYTES", 10_000)  # the real cap is 2 GiB; same code path
    with zipfile.ZipFile(tmp_path / "s.npz", "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("embeddings.npy", b"\0" * 1_000_000)  # ~1 KB on disk, 1 MB expanded
    assert (tmp_path / "s.npz").stat().st_size < 5_000
    with pytest.raises(StateError, match="a state may hold at most"):
        _load(tmp_path / "s.npz", backbone)


@pytest.mark.parametrize("cut", [0.1, 0.5, 0.9, 0.99])
def test_truncated_files(saved, tmp_path, backbone, cut):
    header, members = saved
    data = _npz(tmp_path / "full.npz", header, members).read_bytes()
    (tmp_path / "s.npz").write_bytes(data[: int(len(data) * cut)])
    with pytest.raises(StateError):
        _load(tmp_path / "s.npz", backbone)


def test_a_state_file_that_is_a_folder(tmp_path, backbone):
    """predict MODEL shelf/ state.npz (arguments swapped) said "state file not found: shelf"."""
    (tmp_path / "s.npz").mkdir()
    with pytest.raises(StateError, match=r"s.npz is a folder, not a state file: did you swap the state and the images"):
        _load(tmp_path / "s.npz", backbone)
