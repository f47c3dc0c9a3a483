"""The pixel-input backbone (uint8 NHWC in, preprocessing inside the graph)."""

from __future__ import annotations

from dataclasses import replace

import pytest

ort = pytest.importorskip("onnxruntime")
onnx = pytest.importorskip("onnx")

from anil_edge.export.pixel_input import with_pixel_input
from anil_edge.runtime.preprocess import to_input
from tests.helpers import GRAY, glyphs
from tests.tolerances import assert_f32_close, conv_terms


@pytest.mark.parametrize("invert", [True, False])
def test_the_pixel_model_loads_without_warnings_and_equals_the_float_model(model_path, capfd, invert):
    """No unused constants (onnxruntime prints an ANSI-coloured "Removing initializer" warning for
    each, on every load, in every binding), and the same embeddings as preprocessing in numpy."""
    prep = replace(GRAY, invert=invert)
    pixels_model = with_pixel_input(onnx.load(str(model_path)), prep)
    used = {name for node in pixels_model.graph.node for name in node.input}
    assert {init.name for init in pixels_model.graph.initializer} <= used
    capfd.readouterr()
    session = ort.InferenceSession(pixels_model.SerializeToString(), providers=["CPUExecutionProvider"])
    assert "Removing initializer" not in capfd.readouterr().err
    images, _ = glyphs(2, 2)
    got = session.run(None, {"pixels": images[..., None]})[0]
    float_model = ort.InferenceSession(str(model_path), providers=["CPUExecutionProvider"])
    expected = float_model.run(None, {"images": to_input(images, prep)})[0]
    assert_f32_close(got, expected, terms=conv_terms(32, 4))
