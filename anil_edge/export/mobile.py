"""Mobile readiness: NNAPI and Core ML want static input shapes, onnxruntime's mobile packages
read the ``.ort`` format, and onnxruntime's usability checker says which execution providers
may take a model.

- :func:`fix_batch` — make a model's batch dimension a fixed size (its input and outputs);
- :func:`convert_to_ort` — ``.ort`` files plus the ``required_operators.config`` that a
  reduced onnxruntime build for them needs (``onnxruntime.tools.convert_onnx_models_to_ort``);
- :func:`mobile_verdicts` — ``onnxruntime.tools.check_onnx_model_mobile_usability``'s findings per
  execution provider; :func:`usability_report` — its full text.
"""

from __future__ import annotations

import io
import logging
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
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
                if produced.suffix == ".ort":
                    shutil.copy(produced, target)
                else:  # the config names the files it was made from: the shipped names, not the temporary folder
                    target.write_text(produced.read_text().replace(f"{tmp}{os.sep}", ""))
                written.append(target)
    return written


@dataclass(frozen=True)
class Verdict:
    """What onnxruntime's usability checker finds for one execution provider."""

    ep: str  # "NNAPI", "CoreML NeuralNetwork", "CoreML MLProgram"
    partitions: int  # how many pieces the EP would take (1: the whole model in one piece)
    supported: int  # nodes the EP can run, of ...
    nodes: int  # ... every node of the (basic-optimised) model
    unsupported: tuple[str, ...]  # operators it cannot run
    verdict: str  # onnxruntime's: "YES" (one partition, most nodes), "MAYBE", "NO"
    if_fixed: str | None  # the verdict were the dynamic shapes fixed; None when they are fixed


EPS = ("NNAPI", "CoreML NeuralNetwork", "CoreML MLProgram")


def mobile_verdicts(path: Path) -> list[Verdict]:
    """onnxruntime's mobile usability check of the ONNX model at ``path``, one row per EP, on the
    model as onnxruntime's basic optimisation leaves it (as the ``.ort`` conversion does)."""
    require("onnx", "train")
    require("onnxruntime", "cpu")
    from onnxruntime.tools.mobile_helpers import usability_checker as uc

    checks = {"NNAPI": uc.check_nnapi_partitions,
              "CoreML NeuralNetwork": lambda m, fixed: uc.check_coreml_partitions(
                  m, fixed, "coreml_supported_neuralnetwork_ops.md"),
              "CoreML MLProgram": lambda m, fixed: uc.check_coreml_partitions(m, fixed, "coreml_supported_mlprogram_ops.md")}
    with tempfile.TemporaryDirectory() as tmp:
        optimised = Path(tmp) / path.name
        uc.optimize_model(path, optimised, use_external_initializers=True)
        model = uc.ModelProtoWithShapeInfo(optimised).model_with_shape_info
        dynamic, _ = uc.check_shapes(model.graph)
        rows = []
        for ep in EPS:
            info = checks[ep](model, True)
            rows.append(Verdict(ep, info.num_partitions, info.num_supported_nodes, info.num_nodes,
                                tuple(sorted(info.unsupported_ops)), info.suitability().name,
                                checks[ep](model, False).suitability().name if dynamic else None))
    return rows


def verdict_table(rows: list[Verdict]) -> str:
    """The verdicts as a short table: EP, partitions, share of nodes, recommended?, unsupported ops."""
    lines = [f"{'execution provider':<22} {'partitions':>10} {'nodes':>9} {'share':>7}  recommended  unsupported"]
    for v in rows:
        share = f"{100 * v.supported / v.nodes:.1f}%" if v.nodes else "-"
        verdict = v.verdict + (f" ({v.if_fixed} with fixed shapes)" if v.if_fixed and v.if_fixed != v.verdict else "")
        ops = ", ".join(op.removeprefix("ai.onnx:") for op in v.unsupported) or "-"
        lines.append(f"{v.ep:<22} {v.partitions:>10} {f'{v.supported}/{v.nodes}':>9} {share:>7}  {verdict:<11}  {ops}")
    return "\n".join(lines)


def usability_report(path: Path) -> str:
    """onnxruntime's own usability report of the model (NNAPI, Core ML): its full text."""
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
