"""Users' image folders: one sub-folder per class, optionally grouped."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("PIL")

from anil_edge.data.folder import load_image_folder
from anil_edge.errors import InputError
from anil_edge.runtime.metadata import Preprocessing
from tests.train.helpers import OMNI_PREP, write_folder

RGB32 = Preprocessing((32, 32), 3, (0.5, 0.5, 0.5), (0.25, 0.25, 0.25))


def test_flat_folder(tmp_path):
    write_folder(tmp_path, {"cat": 3, "dog": 2, "emu": 4})
    (tmp_path / "notes.txt").write_text("ignored")
    data = load_image_folder(tmp_path, OMNI_PREP)
    assert data.class_names == ("cat", "dog", "emu") and data.groups == data.class_names
    assert np.array_equal(data.class_sizes(), [3, 2, 4])
    assert data.images.shape == (9, 28, 28, 1)


def test_grouped_folder_rgb(tmp_path):
    write_folder(tmp_path, {"brandA/cola": 2, "brandA/lemon": 2, "brandB/tea": 3}, rgb=True)
    data = load_image_folder(tmp_path, RGB32)
    assert data.class_names == ("brandA/cola", "brandA/lemon", "brandB/tea")
    assert data.groups == ("brandA", "brandA", "brandB")
    assert data.images.shape == (7, 32, 32, 3)


def test_missing_and_empty_folders(tmp_path):
    with pytest.raises(InputError, match="no such folder"):
        load_image_folder(tmp_path / "nope", OMNI_PREP)
    (tmp_path / "empty_class").mkdir()
    with pytest.raises(InputError, match="no class folders with images"):
        load_image_folder(tmp_path, OMNI_PREP)


def test_unreadable_image_is_named(tmp_path):
    write_folder(tmp_path, {"a": 2})
    (tmp_path / "a" / "broken.png").write_bytes(b"\x89PNG garbage")
    with pytest.raises(InputError, match="broken.png"):
        load_image_folder(tmp_path, OMNI_PREP)


def test_sources_named_in_file_names_become_drawers(tmp_path):
    write_folder(tmp_path, {"cat": 2, "dog": 2})
    for i, path in enumerate(sorted(tmp_path.rglob("*.png"))):
        path.rename(path.with_name(f"{path.stem}@{'alice' if i % 2 else 'bob'}.png"))
    data = load_image_folder(tmp_path, OMNI_PREP)
    assert data.drawers is not None and data.drawers.tolist() == [1, 0, 1, 0]  # alice 0, bob 1, in file order
    next(tmp_path.rglob("*@bob.png")).rename(tmp_path / "cat" / "plain.png")
    with pytest.raises(InputError, match=r"3 of 4 images name their source \(file name NAME@SOURCE.ext\) and 1 do"):
        load_image_folder(tmp_path, OMNI_PREP)
