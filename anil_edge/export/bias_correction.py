"""Bias correction of a QDQ INT8 model (Nagel et al., 2019, "Data-Free Quantization Through
Weight Equalization and Bias Correction", section 4.2, with the empirical input means).

Rounding a convolution's weights moves its output by ``(W_q − W) · x``. On average over images
that is ``ε · E[x]``: a per-channel shift that rounding does not average away when a filter has
few taps (a 3×3 depthwise filter has nine) and 7-bit weights. Each quantized convolution's bias
absorbs it: ``b' = b − Σ_{i,k} ε[o, i, k] · E[x_i]``, with ``E[x_i]`` the FP32 model's mean of
input channel ``i`` over the calibration images (zero padding at the borders is ignored, as in the
paper). Nothing else changes: the weights, the scales and the graph stay as they are.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..errors import require

INT32 = np.iinfo(np.int32)


def correct_biases(model: Any, fp32_path: Path, calibration: np.ndarray, batch_size: int = 32) -> int:
    """Correct, in place, the bias of every quantized Conv of the QDQ ``model`` (quantized from
    the FP32 model at ``fp32_path``) with input means over ``calibration`` (N, C, H, W); returns
    how many convolutions were corrected."""
    onnx = require("onnx", "train")
    convs = _quantized_convs(model)
    if not convs:
        return 0
    fp32 = onnx.load(str(fp32_path))
    float_weights = {t.name: t for t in fp32.graph.initializer}
    convs = [c for c in convs if c["weight"] in float_weights]
    means = _input_means(fp32, [c["input"] for c in convs], calibration, batch_size)
    inits = {t.name: t for t in model.graph.initializer}
    arrays = {name: onnx.numpy_helper.to_array(inits[name]) for c in convs for name in c["tensors"]}
    for c in convs:
        q_w, s_w, zp_w, q_b, s_b = (arrays[name] for name in c["tensors"])
        w = onnx.numpy_helper.to_array(float_weights[c["weight"]]).astype(np.float64)
        error = _dequantized(q_w, s_w, zp_w) - w  # (O, I/g, kh, kw)
        shift = _output_shift(error, means[c["input"]], c["group"])
        q_new = np.clip(np.rint((q_b * s_b - shift) / s_b), INT32.min, INT32.max).astype(np.int32)
        inits[c["tensors"][3]].CopyFrom(onnx.numpy_helper.from_array(q_new, c["tensors"][3]))
    return len(convs)


def _quantized_convs(model: Any) -> list[dict[str, Any]]:
    """Each Conv whose weight and bias come from DequantizeLinear nodes of initializers, with the
    float input tensor's name (before its Quantize/DequantizeLinear pair), the FP32 model's name
    of its weight, and the names of its quantized weight, scale, zero point, quantized bias and
    bias scale."""
    produced = {out: node for node in model.graph.node for out in node.output}
    inits = {t.name for t in model.graph.initializer}
    found = []
    for node in model.graph.node:
        if node.op_type != "Conv" or len(node.input) < 3:
            continue
        x_dq, w_dq, b_dq = (produced.get(name) for name in node.input[:3])
        x_q = produced.get(x_dq.input[0]) if x_dq is not None and x_dq.op_type == "DequantizeLinear" else None
        if x_q is None or x_q.op_type != "QuantizeLinear" or w_dq is None or b_dq is None:
            continue
        names = [*w_dq.input[:3], *b_dq.input[:2]]
        if len(w_dq.input) < 3 or not all(n in inits for n in names):
            continue
        group = next((a.i for a in node.attribute if a.name == "group"), 1)
        found.append({"input": x_q.input[0], "weight": w_dq.input[0].removesuffix("_quantized"), "tensors": names,
                      "group": group})
    return found


def _input_means(model: Any, tensors: list[str], calibration: np.ndarray, batch_size: int) -> dict[str, np.ndarray]:
    """The FP32 ``model``'s per-channel mean of each named tensor (N, C, H, W) over ``calibration``
    (the model gains the tensors as outputs)."""
    onnx = require("onnx", "train")
    ort = require("onnxruntime", "cpu")
    outputs = {o.name for o in model.graph.output}
    names = sorted(set(tensors))
    model.graph.output.extend(onnx.helper.make_empty_tensor_value_info(n) for n in names if n not in outputs)
    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL  # keep every tensor by its name
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    feed = session.get_inputs()[0].name
    sums: dict[str, list[np.ndarray]] = {n: [] for n in names}
    for i in range(0, len(calibration), batch_size):
        values = session.run(names, {feed: np.ascontiguousarray(calibration[i : i + batch_size], dtype=np.float32)})
        for n, v in zip(names, values):
            sums[n].append(v.astype(np.float64).mean(axis=(2, 3)))  # (batch, C)
    return {n: np.concatenate(sums[n]).mean(0) for n in names}


def _dequantized(q: np.ndarray, scale: np.ndarray, zero_point: np.ndarray) -> np.ndarray:
    """Per-output-channel (axis 0) dequantization: (q − zp) · scale, float64."""
    shape = (-1,) + (1,) * (q.ndim - 1)
    return (q.astype(np.float64) - zero_point.astype(np.float64).reshape(shape)) * scale.astype(np.float64).reshape(shape)


def _output_shift(error: np.ndarray, mean: np.ndarray, group: int) -> np.ndarray:
    """Σ_{i,k} ε[o, i, k] · E[x_i] per output channel o, for a grouped convolution: (O,)."""
    out_channels, per_group = error.shape[0], error.shape[1]
    summed = error.reshape(out_channels, per_group, -1).sum(2)  # (O, I/g)
    first_input = (np.arange(out_channels) // (out_channels // group)) * per_group  # each output's group's first input
    inputs = mean[first_input[:, None] + np.arange(per_group)[None, :]]  # (O, I/g)
    return (summed * inputs).sum(1)
