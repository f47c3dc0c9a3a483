"""Batch-1 latency of two ONNX backbones, interleaved (one thread each), e.g. an export with and
without the within-class whitening (benchmarks/RESULTS.md, "Within-class whitening"):

    python benchmarks/model_latency.py PLAIN.onnx WHITENED.onnx [--runs 100]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import onnxruntime as ort

from anil_edge.cpu_features import cpu_name


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("models", nargs=2)
    ap.add_argument("--runs", type=int, default=100)
    args = ap.parse_args()
    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    sessions = [ort.InferenceSession(path, options, providers=["CPUExecutionProvider"]) for path in args.models]
    feeds = []
    for s in sessions:
        shape = [1 if not isinstance(d, int) else d for d in s.get_inputs()[0].shape]
        feeds.append({s.get_inputs()[0].name: np.random.default_rng(0).normal(size=shape).astype(np.float32)})
    times: list[list[float]] = [[] for _ in sessions]
    for s, feed in zip(sessions, feeds):
        s.run(None, feed)
    for _ in range(args.runs):
        for k, (s, feed) in enumerate(zip(sessions, feeds)):
            start = time.perf_counter()
            s.run(None, feed)
            times[k].append(time.perf_counter() - start)
    medians = [1000 * float(np.median(t)) for t in times]
    print(f"# CPU {cpu_name()}; onnxruntime {ort.__version__}, 1 thread, batch 1, median of {args.runs} interleaved runs")
    for path, ms in zip(args.models, medians):
        print(f"{path}: {ms:.3f} ms ({ms / medians[0]:.3f}x the first)")


if __name__ == "__main__":
    main()
