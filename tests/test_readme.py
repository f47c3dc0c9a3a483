"""The README's Python example runs as written, against a small exported model."""

from __future__ import annotations

import os

import numpy as np
import pytest

Image = pytest.importorskip("PIL.Image")

from tests.helpers import readme_snippet  # noqa: E402


def test_the_runtime_example_runs_as_written(model_path, tmp_path, capsys):
    pytest.importorskip("onnx")
    from anil_edge.export.open_set_calibration import add_calibration
    from tests.train.helpers import glyph_set, write_folder

    model = tmp_path / "model.onnx"
    model.write_bytes(model_path.read_bytes())
    add_calibration(model, glyph_set(n_classes=20, per_class=6, seed=3))  # as anil-edge export does
    rng = np.random.default_rng(0)
    for name in ("mug1.jpg", "mug2.jpg", "photo.jpg"):
        Image.fromarray(rng.integers(0, 256, (40, 30, 3), dtype=np.uint8)).save(tmp_path / name)
    write_folder(tmp_path / "more_products", {"plate": 2, "cup": 1}, size=28)
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        exec(readme_snippet("## Using the runtime in an app"), {"keys_images_uint8": rng.integers(0, 256, (2, 28, 28, 1),
                                                                                          dtype=np.uint8)})
    finally:
        os.chdir(cwd)
    out = capsys.readouterr().out.split()
    assert len(out) >= 4 and (tmp_path / "products.npz").is_file()
