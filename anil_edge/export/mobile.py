"""Mobile readiness: NNAPI and Core ML want static input shapes, onnxruntime's mobile packages
read the ``.ort`` format, and onnxruntime's usability checker says which execution providers
may take a model.

- :func:`fix_batch` — make a model's batch dimension a fixed size (its input and outputs);
- :func:`convert_to_ort` — ``.ort`` files plus the ``required_operators.config`` that a
  reduced onnxruntime build for them needs (``onnxruntime.tools.convert_onnx_models_to_ort``);
- :func:`usability_report` — ``onnxruntime.tools.check_onnx_model_mobile_usability``'s findings.
"""

from __future__ import annotations

import io
import logging
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from ..errors import InputError, ModelError, require


def fix_batch(path: Path, batch: int) -> None:
    """Rewrite the model at ``path`` with its (dynamic) batch dimension fixed to ``batch``."""
    onnx = require("onnx", "train")
    require("onnxruntime", "cpu")
    from onnxruntime.tools.onnx_model_utils import fix_output_shapes, make_dim_param_fixed

    if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
        raise InputError(f"the fixed batch size must be an integer >= 1, found {batch!r}")
    model = onnx.load(str(path))
    dim = model.graph.input[0].type.tensor_type.shape.dim[0]
    if dim.dim_param:
        make_dim_param_fixed(model.graph, dim.dim_param, batch)
        fix_output_shapes(model)
    elif dim.dim_value != batch:
        raise ModelError(f"{path} already has a fixed batch of {dim.dim_value}")
    onnx.checker.check_model(model)
    onnx.save(model, str(path))


def convert_to_ort(models: list[Path], out_dir: Path) -> list[Path]:
    """``.ort`` files for ``models`` in ``out_dir`` (and ``required_operators.config``)."""
    require("onnxruntime", "cpu")
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        for model in models:
            shutil.copy(model, Path(tmp) / model.name)
        result = subprocess.run([sys.executable, "-m", "onnxruntime.tools.convert_onnx_models_to_ort", tmp,
                                 "--output_dir", tmp, "--optimization_style", "Fixed"],
                                capture_output=True, text=True)
        if result.returncode != 0:
            last = (result.stderr.strip().splitlines() or ["(no message)"])[-1]
            raise ModelError(f"converting to the .ort format failed: {last}")
        written = []
        for produced in sorted(Path(tmp).iterdir()):
            if produced.suffix == ".ort" or produced.name.endswith(".config"):
                target = out_dir / produced.name
                shutil.copy(produced, target)
                written.append(target)
    return written


def usability_report(path: Path) -> str:
    """What onnxruntime's mobile usability checker says of the model (NNAPI, Core ML)."""
    require("onnx", "train")
    require("onnxruntime", "cpu")
    from onnxruntime.tools.mobile_helpers.usability_checker import analyze_model

    buffer = io.StringIO()
    logger = logging.getLogger("anil_edge.mobile_usability")
    handler = logging.StreamHandler(buffer)
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    try:
        analyze_model(Path(path), skip_optimize=False, logger=logger)
    finally:
        logger.removeHandler(handler)
    return buffer.getvalue().strip()
