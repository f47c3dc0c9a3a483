"""The cross-design emoji loader on fabricated packages in the npm layout."""

from __future__ import annotations

import json

import numpy as np
import pytest

from anil_edge.data.emoji import load_emoji
from anil_edge.data.sources import load_split
from anil_edge.errors import InputError
from anil_edge.runtime.metadata import Preprocessing
from tests.helpers import EMOJI, emoji_packages

pytest.importorskip("PIL")
RGB = Preprocessing((16, 16), 3, (0.0,) * 3, (1.0,) * 3, resize="bicubic", crop="center", crop_pct=1.0)


def test_one_class_per_emoji_groups_are_subcategories_drawers_are_designers(tmp_path):
    folders = emoji_packages(tmp_path, missing={("apple", "1F431")})
    data = load_emoji(tuple(map(str, folders)), RGB)
    objects = [c for c, (_, category, _) in EMOJI.items() if category != "Component"]  # skin-tone swatches left out
    assert data.n_classes == len(objects) == 8
    assert [name.split(" (")[1][:-1] for name in data.class_names] == sorted(objects)
    assert set(data.groups) == {"face-smiling", "animal-mammal", "food-fruit"}
    assert data.images.shape == (8 * 3 - 1, 16, 16, 3) and data.images.dtype == np.uint8
    cat = data.class_names.index("cat (1F431)")
    assert sorted(data.drawers[data.labels == cat]) == [0, 1]  # apple did not draw it
    assert np.bincount(data.drawers).tolist() == [8, 8, 7]
    corner = data.images[:, 0, 0]
    assert (corner == 255).all()  # transparent pixels composited on white


def test_an_emoji_drawn_by_one_designer_only_is_left_out(tmp_path):
    folders = emoji_packages(tmp_path, vendors=("google", "twitter"), missing={("twitter", "1F436")})
    data = load_emoji(tuple(map(str, folders)), RGB)
    assert "dog (1F436)" not in data.class_names and data.n_classes == 7


def test_split_by_subcategory_keeps_drawers(tmp_path):
    folders = emoji_packages(tmp_path)
    split = load_split("emoji", tuple(map(str, folders)), RGB, validation=0.1, test=0.1, seed=0)
    for part in (split.train, split.validation, split.test):
        assert part.drawers is not None and len(set(part.groups)) == 1  # whole subcategories held out
    assert split.train.groups[0] != split.test.groups[0]


def _image_names(folder, name: str) -> None:
    """Point the package's first entry at ``name`` (a path out of the designer's folder)."""
    entries = json.loads((folder / "emoji.json").read_text())
    entries[0]["image"] = name
    (folder / "emoji.json").write_text(json.dumps(entries))


@pytest.mark.parametrize("mutate, message", [
    (lambda f: (f / "emoji.json").write_text("{not json"), "not readable JSON"),
    (lambda f: (f / "emoji.json").write_text(json.dumps({"a": 1})), "expected a list of emoji entries"),
    (lambda f: (f / "emoji.json").write_text(json.dumps([{"unified": 1}])), "entries need string unified"),
    (lambda f: (f / "emoji.json").unlink(), "not an emoji set"),
    (lambda f: (f / "img" / f.name / "64").rename(f / "img" / f.name / "32"), "expected one designer's images"),
    (lambda f: (f / "emoji.json").write_text("[" * 100_000), "not readable JSON .*nested deeper"),
    (lambda f: _image_names(f, "../../../../x.png"), r"entry image '../../../../x.png' is not a file name inside 64/"),
    (lambda f: _image_names(f, "/etc/hostname"), r"entry image '/etc/hostname' is not a file name inside 64/"),
])
def test_a_broken_package_is_named_with_what_was_expected(tmp_path, mutate, message):
    folders = emoji_packages(tmp_path)
    mutate(folders[0])
    with pytest.raises(InputError, match=message):
        load_emoji(tuple(map(str, folders)), RGB)


def test_a_missing_folder_is_named(tmp_path):
    folders = emoji_packages(tmp_path, vendors=("google",))
    with pytest.raises(InputError, match="no/such: no such folder"):
        load_emoji((str(folders[0]), "no/such"), RGB)


def test_too_few_or_repeated_designers_are_refused(tmp_path):
    folders = emoji_packages(tmp_path, vendors=("google", "twitter"))
    with pytest.raises(InputError, match="at least 2 designers"):
        load_emoji((str(folders[0]),), RGB)
    with pytest.raises(InputError, match="the same designer given twice"):
        load_emoji((str(folders[0]), str(folders[0])), RGB)


def test_openmoji_needs_its_png_release(tmp_path):
    folders = emoji_packages(tmp_path, vendors=("google",))
    openmoji = tmp_path / "openmoji"
    (openmoji / "data").mkdir(parents=True)
    (openmoji / "data" / "openmoji.json").write_text(json.dumps(
        [{"hexcode": c, "annotation": n, "group": "x", "subgroups": s} for c, (n, _, s) in EMOJI.items()]))
    with pytest.raises(InputError, match="SVGs only"):
        load_emoji((str(folders[0]), str(openmoji)), RGB)
    (openmoji / "color" / "72x72").mkdir(parents=True)
    for png in (folders[0] / "img" / "google" / "64").iterdir():
        (openmoji / "color" / "72x72" / png.name.upper().replace(".PNG", ".png")).write_bytes(png.read_bytes())
    data = load_emoji((str(folders[0]), str(openmoji)), RGB)
    assert data.n_classes == 8  # drawn by both (google leaves out the skin-tone swatch)
    assert np.bincount(data.drawers).tolist() == [8, 8]
