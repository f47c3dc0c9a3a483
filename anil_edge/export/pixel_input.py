"""A backbone variant that takes raw pixels: ``pixels`` uint8 (N, H, W, C) at the model's size.

The preprocessing the Python runtime does in numpy — scale to [0, 1], invert, per-channel
mean/std, NHWC → NCHW — runs inside the graph, so an app only decodes and resizes its images
(bindings without numpy, and onnxruntime-web, get the model's preprocessing for free).
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np

from ..errors import require
from ..runtime.export_files import PIXELS
from ..runtime.metadata import Preprocessing


def with_pixel_input(model: Any, prep: Preprocessing) -> Any:
    """A copy of the float backbone ``model`` whose input is ``pixels`` (N, H, W, C) uint8."""
    onnx = require("onnx", "train")
    helper, numpy_helper = onnx.helper, onnx.numpy_helper
    out = copy.deepcopy(model)
    graph = out.graph
    (old,) = list(graph.input)
    batch = old.type.tensor_type.shape.dim[0]
    height, width = prep.input_size
    c = prep.channels
    consts = {
        "pixels_scale": np.float32(1 / 255),
        **({"pixels_one": np.float32(1.0)} if prep.invert else {}),  # an unused constant makes onnxruntime warn
        "pixels_mean": np.asarray(prep.mean, np.float32).reshape(1, c, 1, 1),
        "pixels_std": np.asarray(prep.std, np.float32).reshape(1, c, 1, 1),
    }
    graph.initializer.extend(numpy_helper.from_array(v, k) for k, v in consts.items())
    nodes = [helper.make_node("Cast", [PIXELS], ["pixels_float"], to=onnx.TensorProto.FLOAT),
             helper.make_node("Mul", ["pixels_float", "pixels_scale"], ["pixels_unit"])]
    unit = "pixels_unit"
    if prep.invert:
        nodes.append(helper.make_node("Sub", ["pixels_one", unit], ["pixels_inverted"]))
        unit = "pixels_inverted"
    nodes += [helper.make_node("Transpose", [unit], ["pixels_nchw"], perm=[0, 3, 1, 2]),
              helper.make_node("Sub", ["pixels_nchw", "pixels_mean"], ["pixels_centred"]),
              helper.make_node("Div", ["pixels_centred", "pixels_std"], [old.name])]
    new_nodes = nodes + list(graph.node)
    del graph.node[:]
    graph.node.extend(new_nodes)
    del graph.input[:]
    dims = [batch.dim_param or batch.dim_value or "N", height, width, c]
    graph.input.append(helper.make_tensor_value_info(PIXELS, onnx.TensorProto.UINT8, dims))
    onnx.checker.check_model(out, full_check=True)
    return out
