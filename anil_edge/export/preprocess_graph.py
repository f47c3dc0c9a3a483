"""``model.preprocess.onnx``: decoded RGBA pixels of any size → the uint8 image at the model's size,
bit for bit what training decoded (:func:`anil_edge.runtime.preprocess.pil_pixels`).

Every client feeds it what its platform's decoder gives (canvas ``getImageData``, Android's
ARGB_8888, iOS's CGImage, a PNG/JPEG library): ``rgba`` uint8 (N, H, W, 4), N images of one size.
The graph reproduces Pillow's integer arithmetic, so no client has to:

1. alpha composited on white (``Image.alpha_composite``'s 7-bit fixed point);
2. grayscale by ITU-R 601 luma in 16-bit fixed point (``convert("L")``), or RGB;
3. Pillow's separable resample (``ImagingResample``): per output pixel, the filter's weights over
   its support, normalised, rounded to 22-bit fixed point; a horizontal pass rounded and clipped
   to uint8, then a vertical one. Bilinear, bicubic (a = −0.5) and Lanczos-3 are built here;
4. ``crop="center"``: the aspect-preserving scale and centre cut of ``_resize_and_crop``.

The sums are exact integers in float64 (at most 255 × 1.3·2²² per tap row < 2⁵³), so the result
equals Pillow's exactly (tested on random images, sizes, aspect ratios and all three filters).
The resample runs as dense matrix products, O(H·W·w + h·H·w) per channel for an (H, W) → (h, w)
resize: about 0.3 GFLOP for a 640×480 photo to 224 px, seconds for a 12-megapixel one. It stays a
separate graph, on the CPU, so that ``model.pixels.onnx`` keeps the static shapes NNAPI and
Core ML need.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..errors import require
from ..runtime.export_files import PIXELS as OUTPUT  # model.pixels.onnx's input: the two graphs chain
from ..runtime.export_files import RGBA
from ..runtime.metadata import Preprocessing
from .graph_builder import GraphBuilder

GRAPH_FILTERS = {"bilinear": 1.0, "bicubic": 2.0, "lanczos": 3.0}  # Pillow's filters the graph builds: support
PRECISION_BITS = 22  # Pillow's fixed point for 8-bit resampling (32 - 8 - 2)


def supports(prep: Preprocessing) -> bool:
    """Whether the graph can reproduce ``prep``'s resize (every filter but nearest)."""
    return prep.resize in GRAPH_FILTERS


def build_preprocess_graph(prep: Preprocessing, opset: int = 18) -> Any:
    """The ONNX model: ``rgba`` uint8 (N, H, W, 4) → ``pixels`` uint8 (N, h, w, C)."""
    onnx = require("onnx", "train")
    helper, T = onnx.helper, onnx.TensorProto
    g = GraphBuilder(onnx, float_dtype=np.float64)  # exact integer arithmetic in float64
    x = g.op("Cast", RGBA, to=T.DOUBLE)  # (N, H, W, 4), exact integers from here on
    image = _on_white(g, x)
    if prep.channels == 1:
        weights = g.const(np.array([19595, 38470, 7471], np.float64).reshape(3, 1))
        image = _shift(g, g.op("Add", g.op("MatMul", image, weights), g.const(32768.0)), 16)
    nchw = g.op("Transpose", image, perm=[0, 3, 1, 2])
    shape = g.op("Cast", g.op("Shape", nchw), to=T.DOUBLE)
    in_h, in_w = (g.op("Gather", shape, g.const(i, np.int64)) for i in (2, 3))
    height, width = prep.input_size
    out_h, out_w = _resized_size(g, prep, in_h, in_w)
    horizontal = _coefficients(g, prep.resize, in_w, out_w)  # (out_w, W)
    vertical = _coefficients(g, prep.resize, in_h, out_h)  # (out_h, H)
    rows = _round_clip(g, g.op("MatMul", nchw, g.op("Transpose", horizontal, perm=[1, 0])))
    resized = _round_clip(g, g.op("MatMul", vertical, rows))  # (N, C, out_h, out_w)
    if prep.crop == "center":
        resized = _centre_crop(g, resized, out_h, out_w, height, width)
    g.rename(g.op("Cast", g.op("Transpose", resized, perm=[0, 2, 3, 1]), to=T.UINT8), OUTPUT)
    return g.model("anil_edge_preprocess", [helper.make_tensor_value_info(RGBA, T.UINT8, ["N", "H", "W", 4])],
                   [helper.make_tensor_value_info(OUTPUT, T.UINT8, ["N", height, width, prep.channels])], opset)


def _on_white(g: GraphBuilder, x: str) -> str:
    """Pillow's ``alpha_composite(white, rgba)``: coef1 = a·128, coef2 = (255 − a)·128 over an
    opaque white background, then ``SHIFTFORDIV255(t + (0x80 << 7)) >> 7``."""
    rgb = g.op("Slice", x, g.const([0], np.int64), g.const([3], np.int64), g.const([3], np.int64))
    alpha = g.op("Slice", x, g.const([3], np.int64), g.const([4], np.int64), g.const([3], np.int64))
    t = g.op("Add", g.op("Mul", rgb, g.op("Mul", alpha, g.const(128.0))),
             g.op("Mul", g.op("Sub", g.const(255.0), alpha), g.const(255.0 * 128)))
    t = g.op("Add", t, g.const(float(0x80 << 7)))
    t = _shift(g, g.op("Add", _shift(g, t, 8), t), 8)  # SHIFTFORDIV255
    return _shift(g, t, 7)


def _shift(g: GraphBuilder, x: str, bits: int) -> str:
    """``x >> bits`` for non-negative exact integers (a division by a power of two is exact)."""
    return g.op("Floor", g.op("Div", x, g.const(float(2 ** bits))))


def _round_clip(g: GraphBuilder, sums: str) -> str:
    """Pillow's ``clip8(ss + (1 << 21))``: round the fixed-point sum to an integer in 0..255."""
    shifted = _shift(g, g.op("Add", sums, g.const(float(1 << (PRECISION_BITS - 1)))), PRECISION_BITS)
    return g.op("Clip", shifted, g.const(0.0), g.const(255.0))


def _resized_size(g: GraphBuilder, prep: Preprocessing, in_h: str, in_w: str) -> tuple[str, str]:
    """The size the image is resized to: the model's (squash), or covering it / crop_pct with the
    aspect ratio kept — ``max(size, round(side · scale))``, Python's round (half to even)."""
    height, width = prep.input_size
    if prep.crop != "center":
        return g.const(float(height)), g.const(float(width))
    scale = g.op("Div", g.op("Max", g.op("Div", g.const(float(height)), in_h), g.op("Div", g.const(float(width)), in_w)),
                 g.const(float(prep.crop_pct)))
    return (g.op("Max", g.const(float(height)), g.op("Round", g.op("Mul", in_h, scale))),
            g.op("Max", g.const(float(width)), g.op("Round", g.op("Mul", in_w, scale))))


def _coefficients(g: GraphBuilder, resize: str, in_size: str, out_size: str) -> str:
    """Pillow's ``precompute_coeffs`` + ``normalize_coeffs_8bpc`` as an (out, in) matrix."""
    scale = g.op("Div", in_size, out_size)
    filterscale = g.op("Max", scale, g.const(1.0))
    support = g.op("Mul", g.const(GRAPH_FILTERS[resize]), filterscale)
    i = g.op("Unsqueeze", g.op("Range", g.const(0.0), out_size, g.const(1.0)), g.const([1], np.int64))
    j = g.op("Unsqueeze", g.op("Range", g.const(0.0), in_size, g.const(1.0)), g.const([0], np.int64))
    centre = g.op("Mul", g.op("Add", i, g.const(0.5)), scale)  # (out, 1)
    low = g.op("Max", g.op("Floor", g.op("Add", g.op("Sub", centre, support), g.const(0.5))), g.const(0.0))
    high = g.op("Min", g.op("Floor", g.op("Add", g.op("Add", centre, support), g.const(0.5))), in_size)
    inside = g.op("And", g.op("GreaterOrEqual", j, low), g.op("Less", j, high))  # (out, in)
    x = g.op("Div", g.op("Add", g.op("Sub", j, centre), g.const(0.5)), filterscale)
    weights = g.op("Where", inside, _filter(g, resize, x), g.const(0.0))
    k = g.op("Div", weights, g.op("ReduceSum", weights, g.const([1], np.int64), keepdims=1))
    scaled = g.op("Add", g.op("Mul", g.op("Abs", k), g.const(float(1 << PRECISION_BITS))), g.const(0.5))
    return g.op("Mul", g.op("Sign", k), g.op("Floor", scaled))  # (int)(k·2²² ± 0.5)


def _filter(g: GraphBuilder, resize: str, x: str) -> str:
    """Pillow's filter functions at ``x`` (``bilinear_filter``, ``bicubic_filter``, ``lanczos_filter``)."""
    a = g.op("Abs", x)
    if resize == "bilinear":
        return g.op("Max", g.op("Sub", g.const(1.0), a), g.const(0.0))
    if resize == "bicubic":  # a = -0.5
        near = g.op("Add", g.op("Mul", g.op("Sub", g.op("Mul", g.const(1.5), a), g.const(2.5)), g.op("Mul", a, a)),
                    g.const(1.0))
        far = g.op("Mul", g.op("Sub", g.op("Mul", g.op("Add", g.op("Mul", g.op("Sub", a, g.const(5.0)), a),
                                                             g.const(8.0)), a), g.const(4.0)), g.const(-0.5))
        return g.op("Where", g.op("Less", a, g.const(1.0)), near,
                    g.op("Where", g.op("Less", a, g.const(2.0)), far, g.const(0.0)))
    # lanczos: sinc(x)·sinc(x/3) on [-3, 3), sinc(0) = 1
    in_range = g.op("And", g.op("GreaterOrEqual", x, g.const(-3.0)), g.op("Less", x, g.const(3.0)))
    value = g.op("Mul", _sinc(g, x), _sinc(g, g.op("Div", x, g.const(3.0))))
    return g.op("Where", in_range, value, g.const(0.0))


def _sinc(g: GraphBuilder, x: str) -> str:
    zero = g.op("Equal", x, g.const(0.0))
    px = g.op("Mul", x, g.const(math.pi))
    safe = g.op("Where", zero, g.const(1.0), px)
    return g.op("Where", zero, g.const(1.0), g.op("Div", g.op("Sin", safe), safe))


def _centre_crop(g: GraphBuilder, image: str, out_h: str, out_w: str, height: int, width: int) -> str:
    """The centre (height, width) of the resized image: offsets ``(size − h) // 2``."""
    T = g.onnx.TensorProto
    top = _shift(g, g.op("Sub", out_h, g.const(float(height))), 1)
    left = _shift(g, g.op("Sub", out_w, g.const(float(width))), 1)
    starts = g.op("Cast", g.op("Concat", g.op("Unsqueeze", top, g.const([0], np.int64)),
                               g.op("Unsqueeze", left, g.const([0], np.int64)), axis=0), to=T.INT64)
    ends = g.op("Add", starts, g.const([height, width], np.int64))
    return g.op("Slice", image, starts, ends, g.const([2, 3], np.int64))


def check_preprocess_graph(path: Any, prep: Preprocessing, seed: int = 0) -> None:
    """The written graph against the runtime's decoding on random RGBA images of several sizes and
    aspect ratios (opaque and transparent): every pixel equal, or :class:`ModelError` listing each
    mismatching size."""
    ort = require("onnxruntime", "cpu")
    Image = require("PIL.Image", "images")
    from ..errors import ModelError, raise_if_problems
    from ..runtime.preprocess import pil_pixels

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(seed)
    height, width = prep.input_size
    problems = []
    for h, w in ((height, width), (3 * height + 1, 2 * width), (height // 2 + 1, 3 * width), (97, 61)):
        rgba = rng.integers(0, 256, (h, w, 4), dtype=np.uint8)
        rgba[: h // 2, ..., 3] = 255
        got = session.run(None, {RGBA: rgba[None]})[0][0]
        wrong = int(np.count_nonzero(got != pil_pixels(Image.fromarray(rgba, "RGBA"), prep)))
        if wrong:
            problems.append(f"{wrong} of {got.size} values differ for a {h}x{w} image")
    raise_if_problems(problems, ModelError, f"{path}: the preprocessing graph disagrees with the runtime's decoding")
