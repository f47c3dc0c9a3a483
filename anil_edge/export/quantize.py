"""INT8 static quantization with onnxruntime's own tools: QDQ format, per-channel weights,
activation ranges calibrated on training images through a ``CalibrationDataReader``.

The INT8 file carries the FP32 model's metadata, with its own graph hash (enrollment states
are bound to the exact backbone that embedded them) and ``extra.precision = "int8"``.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import replace
from pathlib import Path

import numpy as np

from ..errors import InputError, ModelError, require
from ..runtime.metadata import ModelMetadata
from .onnx_export import INPUT_NAME, graph_sha256, set_metadata, write_onnx

METHODS = ("minmax", "percentile", "entropy")


def quantize_int8(fp32_path: str | os.PathLike[str], out_path: str | os.PathLike[str], calibration: np.ndarray,
                  *, method: str = "minmax", batch_size: int = 32) -> ModelMetadata:
    """Quantize the FP32 model at ``fp32_path`` to ``out_path``.

    Args:
        calibration: preprocessed training images (N, C, H, W) float32 (a few hundred suffice).
        method: activation range calibration: "minmax", "percentile" or "entropy".
    """
    require("onnxruntime", "cpu")
    onnx = require("onnx", "train")
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    from ..runtime.backbone import Backbone

    if method not in METHODS:
        raise InputError(f"calibration method must be one of {METHODS}, found {method!r}")
    if calibration.ndim != 4 or calibration.shape[0] == 0:
        raise InputError(f"calibration images must be a non-empty (N, C, H, W) batch, found shape {calibration.shape}")
    meta = Backbone(fp32_path, device="cpu").metadata
    with tempfile.TemporaryDirectory(dir=Path(out_path).parent) as tmp:
        raw, prepared = Path(tmp) / "int8.onnx", Path(tmp) / "prepared.onnx"
        quant_pre_process(str(fp32_path), str(prepared))  # shape inference + graph optimisation, as ORT advises
        quantize_static(
            str(prepared), str(raw), _reader(calibration, batch_size),
            quant_format=QuantFormat.QDQ, per_channel=True, activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            calibrate_method={"minmax": CalibrationMethod.MinMax, "percentile": CalibrationMethod.Percentile,
                              "entropy": CalibrationMethod.Entropy}[method],
        )
        model = onnx.load(str(raw))
    extra = {**dict(meta.extra), "precision": "int8", "fp32_backbone_sha256": meta.backbone_sha256,
             "calibration": {"images": int(calibration.shape[0]), "method": method}}
    int8_meta = replace(meta, backbone_sha256=graph_sha256(model), extra=extra)
    set_metadata(model, int8_meta)
    try:
        onnx.checker.check_model(model, full_check=True)
    except Exception as exc:  # onnx.checker.ValidationError and shape-inference errors
        raise ModelError(f"the INT8 model fails onnx.checker: {exc}") from None
    write_onnx(model, out_path)
    return int8_meta


def _reader(images: np.ndarray, batch_size: int):
    """onnxruntime's ``CalibrationDataReader`` over ``images`` in batches."""
    from onnxruntime.quantization import CalibrationDataReader

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
