"""model.preprocess.onnx equals the runtime's (and training's) decoding bit for bit: Pillow's
alpha compositing, luma, separable resample and centre crop, on any size of RGBA input."""

from __future__ import annotations

import zlib

import numpy as np
import pytest

ort = pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")
Image = pytest.importorskip("PIL.Image")

from anil_edge.export.preprocess_graph import GRAPH_FILTERS, build_preprocess_graph, supports
from anil_edge.runtime.metadata import Preprocessing
from anil_edge.runtime.preprocess import pil_pixels

SIZES = [(105, 105), (28, 28), (60, 37), (37, 60), (300, 200), (13, 90), (90, 13), (20, 15), (1, 1), (1, 200), (481, 640)]


def _prep(resize: str, channels: int, crop: str) -> Preprocessing:
    size = (28, 28) if channels == 1 else (32, 24)
    return Preprocessing(size, channels, (0.5,) * channels, (0.5,) * channels, invert=False, resize=resize, crop=crop,
                         crop_pct=0.875 if crop == "center" else 1.0)


def _photo(rng, h: int, w: int, alpha: str) -> np.ndarray:
    """Smooth random RGBA content (resampling sharp noise tests less), opaque or with alpha."""
    rgba = rng.integers(0, 256, (h, w, 4), dtype=np.uint8)
    small = Image.fromarray(rgba[..., :3]).resize((max(1, w // 4), max(1, h // 4)))
    rgba[..., :3] = np.asarray(small.resize((w, h), Image.Resampling.BICUBIC))
    if alpha == "opaque":
        rgba[..., 3] = 255
    return rgba


@pytest.mark.parametrize("resize", sorted(GRAPH_FILTERS))
@pytest.mark.parametrize("channels, crop", [(1, "squash"), (1, "center"), (3, "squash"), (3, "center")])
def test_the_graph_equals_the_runtime_decoding_exactly(resize, channels, crop):
    prep = _prep(resize, channels, crop)
    session = ort.InferenceSession(build_preprocess_graph(prep).SerializeToString(), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(zlib.crc32(f"{resize}{channels}{crop}".encode()))
    for h, w in SIZES:
        for alpha in ("opaque", "transparent"):
            rgba = _photo(rng, h, w, alpha)
            expected = pil_pixels(Image.fromarray(rgba, "RGBA"), prep)
            got = session.run(None, {"rgba": rgba[None]})[0]
            assert got.dtype == np.uint8 and got.shape == (1, *prep.input_size, channels)
            np.testing.assert_array_equal(got[0], expected, err_msg=f"{(h, w)} {alpha}")


def test_compositing_and_luma_are_pillows_on_every_value():
    """Every (value, alpha) pair at the model's size (no resize): Pillow's integer formulas."""
    prep = _prep("bilinear", 1, "squash")
    values, alphas = np.meshgrid(np.arange(256, dtype=np.uint8), np.arange(256, dtype=np.uint8))
    rgba = np.zeros((256, 256, 4), np.uint8)
    rgba[..., 0], rgba[..., 1], rgba[..., 2], rgba[..., 3] = values, values[::-1], values.T, alphas
    prep = Preprocessing((256, 256), 1, (0.5,), (0.5,), invert=False, resize="bilinear")
    session = ort.InferenceSession(build_preprocess_graph(prep).SerializeToString(), providers=["CPUExecutionProvider"])
    np.testing.assert_array_equal(session.run(None, {"rgba": rgba[None]})[0][0], pil_pixels(Image.fromarray(rgba), prep))


def test_a_batch_of_one_size_is_preprocessed_per_image():
    prep = _prep("bicubic", 3, "center")
    session = ort.InferenceSession(build_preprocess_graph(prep).SerializeToString(), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(5)
    batch = np.stack([_photo(rng, 50, 70, "opaque") for _ in range(3)])
    got = session.run(None, {"rgba": batch})[0]
    for image, out in zip(batch, got):
        np.testing.assert_array_equal(out, pil_pixels(Image.fromarray(image), prep))


def test_nearest_is_the_one_filter_the_graph_does_not_build():
    assert not supports(_prep("nearest", 1, "squash")) and all(supports(_prep(f, 1, "squash")) for f in GRAPH_FILTERS)
