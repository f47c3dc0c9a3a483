"""INT8 weights: an all-zero channel of a per-channel uint8 weight gets the tensor's common zero
point (onnxruntime leaves its fast kernels for mixed ones), and the weights it dequantizes to
do not change."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from anil_edge.export.quantize import uniform_weight_zero_points


def dequantize_graph(q: np.ndarray, zp: np.ndarray, scale: np.ndarray) -> onnx.ModelProto:
    """A graph whose output is DequantizeLinear(q, scale, zp) along axis 0 (a Conv weight's layout)."""
    inits = [numpy_helper.from_array(q, "q"), numpy_helper.from_array(scale, "s"), numpy_helper.from_array(zp, "zp")]
    node = helper.make_node("DequantizeLinear", ["q", "s", "zp"], ["w"], axis=0)
    graph = helper.make_graph([node], "dq", [], [helper.make_tensor_value_info("w", TensorProto.FLOAT, q.shape)], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 19)])


def run(model: onnx.ModelProto) -> np.ndarray:
    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {})[0]


def weights(zp_of_dead: int, dead_values: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    q = rng.integers(0, 256, (4, 1, 3, 3), dtype=np.uint8)
    q[2] = dead_values  # channel 2: all equal to its zero point when it holds only zeros
    zp = np.array([128, 128, zp_of_dead, 128], np.uint8)
    return q, zp, np.array([0.01, 0.02, 1.0, 0.03], np.float32)


def test_an_all_zero_channel_takes_the_common_zero_point_and_dequantizes_the_same():
    model = dequantize_graph(*weights(zp_of_dead=0, dead_values=0))
    before = run(model)
    assert uniform_weight_zero_points(model) == 1
    zp = numpy_helper.to_array(next(t for t in model.graph.initializer if t.name == "zp"))
    assert zp.tolist() == [128, 128, 128, 128]
    np.testing.assert_array_equal(run(model), before)  # exactly the same weights
    assert not before[2].any()


@pytest.mark.parametrize("zp_of_dead, dead_values", [(0, 7), (128, 0)], ids=["a-live-channel", "already-uniform"])
def test_other_tensors_are_left_as_they_are(zp_of_dead, dead_values):
    q, zp, scale = weights(zp_of_dead, dead_values)
    model = dequantize_graph(q, zp, scale)
    assert uniform_weight_zero_points(model) == 0
    np.testing.assert_array_equal(numpy_helper.to_array(model.graph.initializer[0]), q)


@pytest.mark.parametrize("method", ["percentile", "entropy"])
def test_histogram_calibration_takes_a_count_of_images_that_is_no_multiple_of_the_batch(model_path, tmp_path, method,
                                                                                       capfd):
    """onnxruntime's histogram calibrators stack every batch's outputs: a shorter last batch made
    them fail with "inhomogeneous shape" (40 images in batches of 32). They print their progress,
    which stays off the terminal."""
    from anil_edge.export.quantize import quantize_int8

    images = np.random.default_rng(1).uniform(-1, 1, (40, 1, 28, 28)).astype(np.float32)
    meta = quantize_int8(model_path, tmp_path / "int8.onnx", images, method=method, batch_size=32)
    assert meta.extra["calibration"] == {"images": 40, "method": method} and (tmp_path / "int8.onnx").is_file()
    assert capfd.readouterr() == ("", "")


def test_bias_correction_moves_each_bias_by_the_weights_rounding_times_the_input_means(model_path, tmp_path):
    """Against a reference written out for each convolution: b' − b = −Σ (W_q − W) · E[x] over the
    FP32 model's own activations (Nagel et al., 2019), to one step of the bias's int32 grid."""
    import onnx
    import onnxruntime as ort
    from onnx import numpy_helper as nh

    from anil_edge.export.bias_correction import _quantized_convs
    from anil_edge.export.quantize import quantize_int8

    images = np.random.default_rng(2).uniform(0, 1, (24, 1, 28, 28)).astype(np.float32)
    quantize_int8(model_path, tmp_path / "plain.onnx", images, bias_correction=False)
    meta = quantize_int8(model_path, tmp_path / "corrected.onnx", images)
    plain, corrected = onnx.load(str(tmp_path / "plain.onnx")), onnx.load(str(tmp_path / "corrected.onnx"))
    convs = _quantized_convs(corrected)
    assert meta.extra["quantization"]["bias_corrected_convs"] == len(convs) > 0
    fp32 = onnx.load(str(model_path))
    from onnxruntime.quantization.shape_inference import quant_pre_process

    quant_pre_process(str(model_path), str(tmp_path / "prepared.onnx"))
    prepared = onnx.load(str(tmp_path / "prepared.onnx"))
    prepared.graph.output.extend(onnx.helper.make_empty_tensor_value_info(c["input"]) for c in convs)
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    outputs = ort.InferenceSession(prepared.SerializeToString(), options).run(
        [c["input"] for c in convs], {fp32.graph.input[0].name: images})
    weights = {t.name: nh.to_array(t) for t in prepared.graph.initializer}
    inits = [{t.name: nh.to_array(t) for t in m.graph.initializer} for m in (plain, corrected)]
    for c, x in zip(convs, outputs):
        q_w, s_w, zp_w, q_b, s_b = c["tensors"]
        w_q = (inits[1][q_w].astype(np.float64) - inits[1][zp_w].reshape(-1, 1, 1, 1)) * inits[1][s_w].reshape(-1, 1, 1, 1)
        error = w_q - weights[c["weight"]]
        mean = x.astype(np.float64).mean((0, 2, 3))
        assert c["group"] == 1  # the tiny Conv-4: a plain convolution
        expected = -np.einsum("oikl,i->o", error, mean)
        moved = (inits[1][q_b].astype(np.float64) - inits[0][q_b]) * inits[1][s_b]
        np.testing.assert_allclose(moved, expected, atol=float(inits[1][s_b].max()))


def test_the_quantizer_notes_reach_neither_the_terminal_nor_the_apps_logs():
    """onnxruntime's quantizer logs "Quantized bias ..." with logging.warning on the root logger,
    which installs a stderr handler on first use: inside quiet_quantizer nothing is printed, no
    handler is left behind, and the application's own root warnings still work afterwards."""
    import subprocess
    import sys

    script = (
        "import logging\n"
        "from anil_edge.export.quantize import clipped_biases, quiet_quantizer\n"
        "with quiet_quantizer() as notes:\n"
        "    exec(compile(\"import logging; logging.warning('Quantized bias `b` exceeds the range of a int32.')\",\n"
        "                 '/site-packages/onnxruntime/quantization/base_quantizer.py', 'exec'))\n"
        "assert clipped_biases(notes) == 1, notes\n"
        "assert logging.getLogger().handlers == [], logging.getLogger().handlers\n"
        "logging.warning('the app speaks')\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "Quantized bias" not in result.stderr and "WARNING:root:the app speaks" in result.stderr


@pytest.mark.parametrize("out_channels, per_group, group", [(4, 1, 4), (6, 2, 2)])  # depthwise; two groups
def test_the_output_shift_of_a_grouped_convolution_takes_each_groups_own_inputs(out_channels, per_group, group):
    from anil_edge.export.bias_correction import _output_shift

    rng = np.random.default_rng(3)
    error = rng.normal(size=(out_channels, per_group, 3, 3))
    mean = rng.normal(size=per_group * group)
    expected = [sum(error[o, i].sum() * mean[(o // (out_channels // group)) * per_group + i] for i in range(per_group))
                for o in range(out_channels)]
    np.testing.assert_allclose(_output_shift(error, mean, group), expected)
