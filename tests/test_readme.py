"""The README's Python example runs as written, against a small exported model."""

from __future__ import annotations

import os

import numpy as np
import pytest

Image = pytest.importorskip("PIL.Image")

from tests.helpers import readme_example_files, readme_snippet  # noqa: E402


def test_the_runtime_example_runs_as_written(model_path, tmp_path, capsys):
    pytest.importorskip("onnx")
    readme_example_files(model_path, tmp_path)
    rng = np.random.default_rng(0)
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        exec(readme_snippet("## Using the runtime in an app"), {"keys_images_uint8": rng.integers(0, 256, (2, 28, 28, 1),
                                                                                          dtype=np.uint8)})
    finally:
        os.chdir(cwd)
    out = capsys.readouterr().out.split()
    assert len(out) >= 4 and (tmp_path / "products.npz").is_file()
