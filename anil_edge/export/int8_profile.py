"""Where the exported INT8 model is exact and where it pays, recorded in its metadata.

The rules are :mod:`anil_edge.runtime.int8_variants`'s; this module adds the export's own
measurement: the FP32 and INT8 models timed on the export's CPU (batch 1, one thread, the way a
device embeds an enrolled photo), so that the class of that CPU is decided by a figure, not a
rule. Every client (Python's ``precision="auto"``, the CLI, Node) reads the result from the
INT8 model's ``extra.quantization`` or from ``model.json``.
"""

from __future__ import annotations

import time
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np

from ..cpu_features import cpu_class, cpu_name
from ..errors import require
from ..runtime.backbone import read_metadata
from ..runtime.int8_variants import Int8Speed, faster_on
from .onnx_export import rewrite_metadata

ROUNDS = 50  # interleaved timed runs of each model (after WARMUP), their median kept
WARMUP = 3


def measure_int8_speed(fp32: Path, int8: Path, rounds: int = ROUNDS) -> Int8Speed:
    """Median ms per image of each model at batch 1 and one thread, runs interleaved so that a
    slow spell of a shared machine touches both alike."""
    ort = require("onnxruntime", "cpu")
    options = ort.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads, options.log_severity_level = 1, 1, 3
    sessions = [ort.InferenceSession(str(p), sess_options=options, providers=["CPUExecutionProvider"])
                for p in (fp32, int8)]
    given = sessions[0].get_inputs()[0]
    shape = [1, *given.shape[1:]]  # one image (N, C, H, W): the batch axis is dynamic
    feed = {given.name: np.random.default_rng(0).random(shape, dtype=np.float32)}
    times: list[list[float]] = [[], []]
    for i in range(WARMUP + rounds):
        for session, kept in zip(sessions, times):
            start = time.perf_counter()
            session.run(None, feed)
            if i >= WARMUP:
                kept.append(time.perf_counter() - start)
    fp32_ms, int8_ms = (1000 * float(np.median(t)) for t in times)
    return Int8Speed(cpu_name(), cpu_class(), fp32_ms, int8_ms)


def record_int8_profile(fp32: Path, int8: Path) -> dict:
    """Time both models and write ``faster_on`` (the kernels' rule with this CPU's class decided by
    the figure) and ``measured`` into the INT8 model's ``extra.quantization`` (in place; the
    quantizer wrote ``exact_on``); that ``extra.quantization``."""
    speed = measure_int8_speed(fp32, int8)
    meta = read_metadata(int8)
    q = {**meta.extra["quantization"], "measured": asdict(speed)}
    q["faster_on"] = faster_on(q["weights"] != "uint8", speed)
    rewrite_metadata(int8, replace(meta, extra={**meta.extra, "quantization": q}))
    return q
