"""Time model.preprocess.onnx against the runtime's Pillow decoding and check they are equal.

Run: .venv/bin/python benchmarks/preprocess_graph.py  (RESULTS.md, "Preprocessing graph").
"""

from __future__ import annotations

import functools
import time

import numpy as np
import onnxruntime as ort
from PIL import Image

from anil_edge.cpu_features import cpu_name
from anil_edge.export.preprocess_graph import build_preprocess_graph
from anil_edge.runtime.metadata import Preprocessing
from anil_edge.runtime.preprocess import pil_pixels

GLYPH = Preprocessing((28, 28), 1, (0.5,), (0.5,), invert=True, resize="lanczos")
PHOTO = Preprocessing((224, 224), 3, (0.5,) * 3, (0.5,) * 3, resize="bicubic", crop="center", crop_pct=0.875)
CASES = [((105, 105), GLYPH), ((480, 640), PHOTO), ((1080, 1920), PHOTO), ((3024, 4032), PHOTO)]


def median_ms(fn, repeats: int = 7) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1e3 * float(np.median(times))


def main() -> None:
    print(f"# model.preprocess.onnx vs the runtime's Pillow decoding; {cpu_name()}, onnxruntime {ort.__version__}, "
          "1 thread; median of 7")
    print("| model input | image | filter | graph ms | Pillow ms | equal |")
    print("|---|---|---|---:|---:|---|")
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    rng = np.random.default_rng(0)
    for (h, w), prep in CASES:
        graph = build_preprocess_graph(prep).SerializeToString()
        session = ort.InferenceSession(graph, options, providers=["CPUExecutionProvider"])
        rgba = rng.integers(0, 256, (h, w, 4), dtype=np.uint8)
        rgba[..., 3] = 255
        image = Image.fromarray(rgba, "RGBA")
        equal = np.array_equal(session.run(None, {"rgba": rgba[None]})[0][0], pil_pixels(image, prep))
        graph_ms = median_ms(functools.partial(session.run, None, {"rgba": rgba[None]}))
        pillow_ms = median_ms(functools.partial(pil_pixels, image, prep))
        crop = ", centre crop" if prep.crop == "center" else ""
        print(f"| {prep.channels}×{prep.input_size[0]}×{prep.input_size[1]} | {w}×{h} | {prep.resize}{crop} | "
              f"{graph_ms:.2f} | {pillow_ms:.2f} | {equal} |")


if __name__ == "__main__":
    main()
