"""Time an FP32 backbone against its u8u8 INT8 model as onnxruntime's quantizer writes it (an
all-zero weight channel has its own zero point) and as the export ships it
(``export.quantize.uniform_weight_zero_points``), and check the two INT8 models agree bit for bit.

Run: .venv/bin/python benchmarks/int8_zero_points.py MODEL.onnx  (RESULTS.md, "INT8 zero points").
Calibration uses random images: the weights, not the activation ranges, decide the zero points.
"""

from __future__ import annotations

import argparse
import functools
import tempfile
from pathlib import Path
from unittest import mock

import numpy as np
import onnxruntime as ort

from anil_edge.bench.timing import median_seconds
from anil_edge.cpu_features import cpu_name
from anil_edge.export import quantize
from anil_edge.runtime import Backbone


def session(path: Path, threads: int) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", type=Path, help="an FP32 model exported by anil-edge")
    parser.add_argument("--repeats", type=int, default=200)
    args = parser.parse_args()
    prep = Backbone(args.model).metadata.preprocessing
    rng = np.random.default_rng(0)
    shape = (prep.channels, *prep.input_size)
    calibration = rng.standard_normal((64, *shape)).astype(np.float32)
    with tempfile.TemporaryDirectory() as tmp:
        shipped, raw = Path(tmp) / "shipped.onnx", Path(tmp) / "raw.onnx"
        quantize.quantize_int8(args.model, shipped, calibration, fmt="u8u8")
        with mock.patch.object(quantize, "uniform_weight_zero_points", lambda model: 0):
            quantize.quantize_int8(args.model, raw, calibration, fmt="u8u8")
        x = rng.standard_normal((1, *shape)).astype(np.float32)
        name = session(args.model, 1).get_inputs()[0].name
        same = np.array_equal(session(raw, 1).run(None, {name: x})[0], session(shipped, 1).run(None, {name: x})[0])
        print(f"# {args.model}: batch 1, median of {args.repeats}; {cpu_name()}, onnxruntime {ort.__version__}; "
              f"the two INT8 models' embeddings bit-identical: {same}")
        print("| threads | FP32 ms | INT8 u8u8 as quantized ms | INT8 u8u8 as shipped ms | shipped vs FP32 |")
        print("|---:|---:|---:|---:|---:|")
        for threads in (1, 2):
            ms = [1e3 * median_seconds(functools.partial(session(p, threads).run, None, {name: x}), args.repeats, 10)
                  for p in (args.model, raw, shipped)]
            print(f"| {threads} | {ms[0]:.2f} | {ms[1]:.2f} | {ms[2]:.2f} | {ms[0] / ms[2]:.2f}× |")


if __name__ == "__main__":
    main()
