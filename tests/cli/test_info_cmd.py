"""``anil-edge info``: what a model file says about itself — its own format, not the reader's."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("onnxruntime")

from anil_edge.cli.main import main

DATA = Path(__file__).parents[1] / "data"


def test_info_prints_the_files_own_metadata_format(model_path, capsys):
    assert main(["info", str(DATA / "v1_model.onnx")]) == 0
    assert "written by 0.1.0, metadata format 1" in capsys.readouterr().out  # a model of the first format
    assert main(["info", str(model_path)]) == 0
    assert "metadata format 3" in capsys.readouterr().out
