"""Omniglot in its distribution layout: zips, extracted folders, merging, real data."""

from __future__ import annotations

import zipfile

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("PIL")

from anil_edge.data.omniglot import load_omniglot
from anil_edge.data.splits import split_by_group
from anil_edge.errors import InputError
from anil_edge.runtime.preprocess import to_input
from tests.train.helpers import OMNI_PREP, big_glyph, png_bytes, shared_omniglot, write_omniglot_zip


@pytest.fixture(scope="module")
def two_zips(tmp_path_factory):
    root = tmp_path_factory.mktemp("omniglot")
    a = write_omniglot_zip(root / "small1.zip", "images_background_small1", {"Greek": 3, "Balinese": 2})
    b = write_omniglot_zip(root / "small2.zip", "images_background_small2", {"Greek": 3, "Tagalog": 2})
    return a, b


def test_zips_merge_shared_characters(two_zips):
    data = load_omniglot(two_zips, OMNI_PREP)
    assert data.n_classes == 7  # Greek's 3 characters appear in both zips once
    assert data.images.shape == (21, 28, 28, 1) and data.images.dtype == np.uint8
    assert np.array_equal(data.class_sizes(), np.full(7, 3))
    assert sorted(set(data.groups)) == ["Balinese", "Greek", "Tagalog"]
    assert data.class_names[0] == "Balinese/character01"


def test_extracted_folder_equals_zip(two_zips, tmp_path):
    with zipfile.ZipFile(two_zips[0]) as archive:
        archive.extractall(tmp_path)
    from_zip = load_omniglot([two_zips[0]], OMNI_PREP)
    for source in (tmp_path, tmp_path / "images_background_small1"):
        from_dir = load_omniglot([source], OMNI_PREP)
        assert from_dir.class_names == from_zip.class_names
        np.testing.assert_array_equal(from_dir.images, from_zip.images)


def test_pixels_are_what_the_runtime_feeds_the_model(two_zips, tmp_path):
    """Training decodes with the runtime's own resize: the same file gives the same input."""
    from PIL import Image

    data = load_omniglot([two_zips[0]], OMNI_PREP)
    path = tmp_path / "one.png"
    with zipfile.ZipFile(two_zips[0]) as archive:
        path.write_bytes(archive.read("images_background_small1/Balinese/character01/0001_01.png"))
    np.testing.assert_array_equal(to_input(str(path), OMNI_PREP), to_input(data.images[0], OMNI_PREP))
    assert Image.open(path).size == (105, 105)


@pytest.mark.parametrize("kind", ["missing", "not_zip", "empty_zip"])
def test_bad_sources_are_clear_errors(kind, tmp_path):
    path = tmp_path / "x.zip"
    if kind == "not_zip":
        path.write_text("hello")
    elif kind == "empty_zip":
        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr("readme.txt", "nothing here")
    with pytest.raises(InputError, match="x.zip"):
        load_omniglot([path], OMNI_PREP)


def test_corrupt_png_names_the_member(tmp_path):
    path = tmp_path / "bad.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("top/Greek/character01/0001_01.png", b"not a png")
    with pytest.raises(InputError, match="character01/0001_01.png"):
        load_omniglot([path], OMNI_PREP)


def test_real_minimal_splits():
    zips = shared_omniglot()
    if not zips:
        pytest.skip("../shared/data/omniglot is not present")
    data = load_omniglot(zips, OMNI_PREP)
    assert data.n_classes == 242 and data.images.shape == (4840, 28, 28, 1)
    assert np.array_equal(data.class_sizes(), np.full(242, 20))
    for c in (0, 100, 241):  # each character drawn once by each of 20 people
        assert sorted(data.drawers[data.labels == c].tolist()) == list(range(1, 21))
    split = split_by_group(data, validation=0.15, test=0.25, seed=0)
    groups = [set(s.groups) for s in (split.train, split.validation, split.test)]
    assert not (groups[0] & groups[1] or groups[0] & groups[2] or groups[1] & groups[2])
    assert split.test.n_classes >= 20 and split.validation.n_classes >= 20
    assert split.train.n_classes + split.validation.n_classes + split.test.n_classes == 242
    # Strokes are ink (dark): after the model's inversion the mean pixel is small.
    assert to_input(data.images[:50], OMNI_PREP).mean() < 0.2


def test_drawers_come_from_the_file_names_and_survive_splits_and_rotations(two_zips):
    data = load_omniglot(two_zips, OMNI_PREP)
    assert data.drawers is not None and data.drawers.dtype == np.int64
    assert sorted(set(data.drawers.tolist())) == [1, 2, 3]
    sub = data.subset([2, 0])
    np.testing.assert_array_equal(sub.drawers, np.concatenate([data.drawers[data.labels == c] for c in (2, 0)]))
    rotated = sub.with_rotations()
    np.testing.assert_array_equal(rotated.drawers, np.tile(sub.drawers, 4))


def test_other_file_names_record_no_drawers(tmp_path):
    path = tmp_path / "odd.zip"
    with zipfile.ZipFile(path, "w") as archive:
        for i, name in enumerate(["0001_01.png", "first.png"]):
            archive.writestr(f"top/Greek/character01/{name}", png_bytes(big_glyph(i)))
    assert load_omniglot([path], OMNI_PREP).drawers is None
