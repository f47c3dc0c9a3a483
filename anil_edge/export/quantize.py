"""INT8 static quantization with onnxruntime's own tools: QDQ format, per-channel weights,
activation ranges calibrated on training images through a ``CalibrationDataReader``.

The format (activation × weight types) decides which onnxruntime (MLAS) kernels run, and so
whether the INT8 model computes the same thing on every device:

- ``u8s8-reduced`` (tried first by the default, ``auto``): uint8 activations, int8 weights in a 7-bit range
  (``reduce_range``). x86-64 CPUs without VNNI (AVX2 only: older Intel Core, AMD Zen 1–3) run
  u8×s8 products with ``vpmaddubsw``, which adds pairs into int16 and *saturates* when
  2 · 255 · 127 > 32767; with |w| ≤ 64 a pair is at most 2 · 255 · 64 = 32640, so it cannot.
  With VNNI (``vpdpbusd``) or AMX, and on ARM64 (NEON/``udot``/``i8mm``, which widen before
  adding), nothing saturates either: every device computes exact integer sums.
- ``u8s8``: full 8-bit weights; exact with VNNI/AMX/ARM64, saturating on AVX2-only x86
  (onnxruntime's quantization guide names this and advises reduce_range or U8U8).
- ``s8s8``: onnxruntime converts int8 activations to uint8 on x86 (QDQ S8→U8), so it inherits
  u8s8's saturation there; native on ARM64.
- ``u8u8``: uint8 weights; x86 widens to int16 first (``vpmaddwd``): exact, but it cannot use
  VNNI's u8×s8 instructions or AMX, so it is slower where those exist. ``auto`` falls back to it
  when 7-bit weights lose too much (EfficientNet-Lite0's depthwise filters can: RESULTS.md,
  "INT8 zero points").

A weight channel that is all zeros (pretrained EfficientNet-Lite0 has a few) gets its own
zero point from onnxruntime's quantizer (0, beside 128 for the rest of a uint8 tensor), and
onnxruntime's QLinearConv then leaves its fast depthwise kernel (several times slower:
RESULTS.md, "INT8 zero points") unless :func:`uniform_weight_zero_points` gives such channels the
tensor's common zero point. That zero point represents their zeros exactly, so the outputs are
bit-identical.

The INT8 file carries the FP32 model's metadata, with its own graph hash (enrollment states
are bound to the exact backbone that embedded them), ``extra.precision = "int8"`` and
``extra.quantization`` (format, weight range, whether AVX2 kernels can saturate, and the CPU
classes where it is exact and where it is expected to be faster: runtime/int8_variants.py; the
export adds its own timing, export/int8_profile.py).
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import tempfile
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError, ModelError, require
from ..runtime.int8_variants import exact_on, faster_on
from ..runtime.metadata import ModelMetadata
from .bias_correction import correct_biases
from .onnx_export import INPUT_NAME, graph_sha256, set_metadata, write_onnx

METHODS = ("minmax", "percentile", "entropy")
# format -> (activation type, weight type, reduce_range): see the module docstring.
FORMATS = {"u8s8-reduced": ("QUInt8", "QInt8", True), "u8s8": ("QUInt8", "QInt8", False),
           "s8s8": ("QInt8", "QInt8", False), "u8u8": ("QUInt8", "QUInt8", False)}
DEFAULT_FORMAT = "auto"  # the export tries AUTO_FORMATS in order and ships the first that keeps the embeddings
AUTO_FORMATS = ("u8s8-reduced", "u8u8")  # both exact on every CPU; u8u8 keeps 8-bit weights (EfficientNet-Lite)
INT16_MAX = 32767


def _depthwise(model: Any) -> list[str]:
    """The names of the graph's depthwise convolutions (``group`` > 1: one filter per channel)."""
    return [n.name for n in model.graph.node if n.op_type == "Conv"
            and any(a.name == "group" and a.i > 1 for a in n.attribute)]


KEEP_FLOAT = {"depthwise": _depthwise}  # kind of node -> its names in the (pre-processed) graph


def quantize_int8(fp32_path: str | os.PathLike[str], out_path: str | os.PathLike[str], calibration: np.ndarray,
                  *, method: str = "minmax", batch_size: int = 32, fmt: str = "u8s8-reduced",
                  keep_float: tuple[str, ...] = (), bias_correction: bool = True) -> ModelMetadata:
    """Quantize the FP32 model at ``fp32_path`` to ``out_path``.

    Args:
        calibration: preprocessed training images (N, C, H, W) float32 (a few hundred suffice).
        method: activation range calibration: "minmax", "percentile" or "entropy".
        fmt: one of :data:`FORMATS` (the module docstring says how each behaves on which CPU).
        keep_float: kinds of node left in FP32 (:data:`KEEP_FLOAT`), e.g. ("depthwise",).
        bias_correction: correct each convolution's bias for its weights' rounding
            (:mod:`.bias_correction`, with the calibration images' input means); it raised
            every model measured toward FP32 (benchmarks/RESULTS.md, "INT8 remedies").
    """
    require("onnxruntime", "cpu")
    onnx = require("onnx", "train")
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    from ..runtime.backbone import Backbone

    if method not in METHODS:
        raise InputError(f"calibration method must be one of {METHODS}, found {method!r}")
    if fmt not in FORMATS:
        raise InputError(f"INT8 format must be one of {tuple(FORMATS)} (or 'auto' for the export), found {fmt!r}")
    unknown = [k for k in keep_float if k not in KEEP_FLOAT]
    if unknown:
        raise InputError(f"keep_float takes {tuple(KEEP_FLOAT)}, found {unknown}")
    activations, weights, reduce_range = FORMATS[fmt]
    if calibration.ndim != 4 or calibration.shape[0] == 0:
        raise InputError(f"calibration images must be a non-empty (N, C, H, W) batch, found shape {calibration.shape}")
    meta = Backbone(fp32_path, device="cpu").metadata
    with tempfile.TemporaryDirectory(dir=Path(out_path).parent) as tmp:
        raw, prepared = Path(tmp) / "int8.onnx", Path(tmp) / "prepared.onnx"
        with quiet_quantizer() as notes:
            quant_pre_process(str(fp32_path), str(prepared))  # shape inference + graph optimisation, as ORT advises
            zeroed = zero_negligible_channels(prepared)
            graph = onnx.load(str(prepared)) if keep_float else None
            excluded = [name for kind in keep_float for name in KEEP_FLOAT[kind](graph)]
            quantize_static(
                str(prepared), str(raw), _reader(calibration, batch_size, equal=method != "minmax"),
                quant_format=QuantFormat.QDQ, per_channel=True, reduce_range=reduce_range,
                activation_type=getattr(QuantType, activations), weight_type=getattr(QuantType, weights),
                calibrate_method={"minmax": CalibrationMethod.MinMax, "percentile": CalibrationMethod.Percentile,
                                  "entropy": CalibrationMethod.Entropy}[method],
                nodes_to_exclude=excluded,
            )
        model = onnx.load(str(raw))
        corrected = correct_biases(model, prepared, calibration, batch_size) if bias_correction else 0
    uniform_weight_zero_points(model)
    extra = {**dict(meta.extra), "precision": "int8", "fp32_backbone_sha256": meta.backbone_sha256,
             "calibration": {"images": int(calibration.shape[0]), "method": method},
             "quantization": {**quantization_summary(model, fmt), "clipped_biases": clipped_biases(notes),
                              "negligible_channels_zeroed": zeroed, "bias_corrected_convs": corrected,
                              **({"float_nodes": list(keep_float)} if keep_float else {})}}
    int8_meta = replace(meta, backbone_sha256=graph_sha256(model), extra=extra)
    set_metadata(model, int8_meta)
    try:
        onnx.checker.check_model(model, full_check=True)
    except Exception as exc:  # onnx.checker.ValidationError and shape-inference errors
        raise ModelError(f"the INT8 model fails onnx.checker: {exc}") from None
    write_onnx(model, out_path)
    return int8_meta


@contextlib.contextmanager
def quiet_quantizer() -> Iterator[list[str]]:
    """Keep onnxruntime's quantizer notes away from the user; yields the list it collects them in.

    It logs them with ``logging.warning`` on the root logger, which, while the root has no
    handler, installs one on stderr for good (26 ``WARNING:root:`` lines on a photo model). Inside
    the block the root gets a handler that discards (so none is installed) and a filter that keeps
    onnxruntime's records (so an application's own root handlers do not get them either). The
    sessions the quantizer creates itself log graph notes from C++ ("Removing initializer");
    onnxruntime's default logger is set to errors for the block, and what the percentile and
    entropy calibrators print ("Collecting tensor data and making histogram ...") goes to the
    notes too."""
    import onnxruntime

    root = logging.getLogger()
    quiet = logging.NullHandler()
    notes: list[str] = []
    keep = _KeepOnnxruntime(notes)
    root.addHandler(quiet)
    root.addFilter(keep)
    onnxruntime.set_default_logger_severity(3)  # the sessions it makes itself: errors only, no graph notes
    printed = io.StringIO()
    try:
        with contextlib.redirect_stdout(printed):  # the histogram calibrators print their progress
            yield notes
    finally:
        notes.extend(line for line in printed.getvalue().splitlines() if line.strip())
        onnxruntime.set_default_logger_severity(2)  # onnxruntime's default
        root.removeFilter(keep)
        root.removeHandler(quiet)


class _KeepOnnxruntime(logging.Filter):
    """Takes onnxruntime's records out of the logging stream, into ``notes``."""

    def __init__(self, notes: list[str]) -> None:
        super().__init__()
        self.notes = notes

    def filter(self, record: logging.LogRecord) -> bool:
        if f"{os.sep}onnxruntime{os.sep}" not in record.pathname:
            return True
        self.notes.append(record.getMessage())
        return False


def clipped_biases(notes: list[str]) -> int:
    """How many biases the quantizer clipped to the int32 range (its "Quantized bias ... exceeds
    the range of a int32" notes): a bias whose scale, the product of an activation scale and a
    weight channel's scale, is tiny. The INT8 check's figures include their effect."""
    return sum(note.startswith("Quantized bias") for note in notes)


def quantization_summary(model: Any, fmt: str) -> dict[str, Any]:
    """What the INT8 graph holds: its format, the widest pair sum a u8×s8 kernel can form
    (:func:`pair_sum_bound`), and whether AVX2's int16 pair sums can saturate."""
    activations, weights, reduce_range = FORMATS[fmt]
    widest = max((pair_sum_bound(w) for w in int8_weights(model)), default=0) if weights == "QInt8" else 0
    return {"format": fmt, "activations": "uint8" if activations == "QUInt8" else "int8",
            "weights": ("int8, 7-bit range" if reduce_range else "int8") if weights == "QInt8" else "uint8",
            "per_channel": True, "widest_pair_sum": int(widest), "avx2_saturation_free": bool(widest <= INT16_MAX),
            "exact_on": exact_on(widest <= INT16_MAX), "faster_on": faster_on(weights == "QInt8", None)}


NEGLIGIBLE = 1e-4  # a weight channel whose largest |w| is below this share of the tensor's median channel's


def zero_negligible_channels(path: Path) -> int:
    """Set to exactly 0 (in the file at ``path``) every Conv weight channel (output channel) whose
    largest |w| is below :data:`NEGLIGIBLE` times the median channel's; the number of channels.

    Such a channel (pretrained EfficientNet-Lite0 has some, around 1e-10) gets a per-channel weight
    scale near 1e-9, so its bias, quantized with the activation scale times that, overflows int32
    and is clipped: the channel then outputs a wrong constant, which every later layer carries. An
    all-zero channel gets scale 1 from onnxruntime's quantizer and its bias is kept. The FP32
    output moves by at most that share of a typical channel's contribution; the INT8 check
    compares with the untouched FP32 model."""
    onnx = require("onnx", "train")
    model = onnx.load(str(path))
    inits = {t.name: t for t in model.graph.initializer}
    weights = {n.input[1] for n in model.graph.node if n.op_type == "Conv" and len(n.input) > 1}
    zeroed = 0
    for name in sorted(weights & set(inits)):
        w = onnx.numpy_helper.to_array(inits[name])
        if w.ndim < 2 or not np.issubdtype(w.dtype, np.floating):
            continue
        rows = np.abs(w.reshape(w.shape[0], -1)).max(1)
        negligible = (rows < NEGLIGIBLE * np.median(rows)) & (rows > 0)
        if negligible.any():
            w = w.copy()
            w[negligible] = 0
            inits[name].CopyFrom(onnx.numpy_helper.from_array(w, name))
            zeroed += int(negligible.sum())
    if zeroed:
        onnx.save(model, str(path))
    return zeroed


def uniform_weight_zero_points(model: Any) -> int:
    """Give each all-zero channel of a per-channel uint8 weight the zero point the tensor's other
    channels share (in place), so that onnxruntime keeps its fast kernels; the dequantized weights
    do not change. Returns how many tensors were changed; a tensor whose channels differ in
    zero point for any other reason is left as it is."""
    onnx = require("onnx", "train")
    inits = {t.name: t for t in model.graph.initializer}
    changed = 0
    for node in model.graph.node:
        if node.op_type != "DequantizeLinear" or len(node.input) < 3 or not (node.input[0] in inits and node.input[2] in inits):
            continue
        q, zp = (onnx.numpy_helper.to_array(inits[node.input[i]]) for i in (0, 2))
        if q.dtype != np.uint8 or zp.ndim != 1 or len(np.unique(zp)) < 2:
            continue
        axis = next((a.i for a in node.attribute if a.name == "axis"), 1)
        rows = np.moveaxis(q, axis, 0).reshape(len(zp), -1).copy()
        values, counts = np.unique(zp, return_counts=True)
        common, odd = values[np.argmax(counts)], np.flatnonzero(zp != values[np.argmax(counts)])
        if not all((rows[c] == zp[c]).all() for c in odd):  # a channel that is not all zeros
            continue
        rows[odd], zp = common, np.where(zp == common, zp, common).astype(np.uint8)
        q = np.moveaxis(rows.reshape(np.moveaxis(q, axis, 0).shape), 0, axis)
        inits[node.input[0]].CopyFrom(onnx.numpy_helper.from_array(np.ascontiguousarray(q), node.input[0]))
        inits[node.input[2]].CopyFrom(onnx.numpy_helper.from_array(zp, node.input[2]))
        changed += 1
    return changed


def int8_weights(model: Any) -> list[np.ndarray]:
    """The int8 weight tensors of the QDQ graph's Conv/Gemm/MatMul nodes (initializers that feed
    a DequantizeLinear whose output is one of those nodes' second input)."""
    onnx = require("onnx", "train")
    inits = {t.name: t for t in model.graph.initializer}
    weight_inputs = {n.input[1] for n in model.graph.node if n.op_type in ("Conv", "Gemm", "MatMul") and len(n.input) > 1}
    found = []
    for node in model.graph.node:
        if node.op_type == "DequantizeLinear" and node.output[0] in weight_inputs and node.input[0] in inits:
            tensor = inits[node.input[0]]
            if tensor.data_type == onnx.TensorProto.INT8:
                found.append(onnx.numpy_helper.to_array(tensor))
    return found


def pair_sum_bound(weight: np.ndarray) -> int:
    """The largest 255 · (|w_k| + |w_k+1|) that ``vpmaddubsw`` can add into one int16 for this
    weight tensor, whatever order a kernel packs its elements in: 255 · 2 · max |w|."""
    return int(255 * 2 * np.abs(weight.astype(np.int64)).max()) if weight.size else 0


def _reader(images: np.ndarray, batch_size: int, equal: bool = False):
    """onnxruntime's ``CalibrationDataReader`` over ``images`` in batches. ``equal``: every batch
    the same size (the last partial one dropped when there is more than one): onnxruntime's
    histogram calibrators (percentile, entropy) stack the batches' outputs into one array and
    fail on a shorter last batch ("inhomogeneous shape")."""
    from onnxruntime.quantization import CalibrationDataReader

    if equal and len(images) > batch_size:
        images = images[: len(images) - len(images) % batch_size]

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.batches = [np.ascontiguousarray(images[i : i + batch_size], dtype=np.float32)
                            for i in range(0, len(images), batch_size)]
            self.position = 0

        def get_next(self) -> dict[str, np.ndarray] | None:
            if self.position >= len(self.batches):
                return None
            self.position += 1
            return {INPUT_NAME: self.batches[self.position - 1]}

        def rewind(self) -> None:
            self.position = 0

    return Reader()
