"""The photo benchmark's table (benchmarks/RESULTS.md, "Photos") from the files benchmarks/photos.sh
wrote: accuracy ± 95% CI per image through the runtime, open-set AUROC, and batch-1 latency of
the FP32 and INT8 ONNX backbones (median of 50 calls, 1 thread, this machine's CPU).

    python benchmarks/photos_table.py OUT
"""

from __future__ import annotations

import functools
import json
import re
import sys
from pathlib import Path

import numpy as np

from anil_edge.bench.timing import median_seconds
from anil_edge.runtime import Backbone

ROWS = {"conv4-scratch": "Conv-4 from scratch (64 px)", "lite0-imprint": "EfficientNet-Lite0 ImageNet, prototype head, "
        "no meta-training (128 px)", "lite0-anil": "EfficientNet-Lite0 ImageNet + ANIL meta-fine-tuning (128 px)",
        "mnv3s-anil-scratch": "MobileNetV3-small from scratch + ANIL (128 px)"}


def latency_ms(path: Path, calls: int = 50) -> float:
    backbone = Backbone(path, device="cpu", intra_op_threads=1)
    h, w = backbone.metadata.preprocessing.input_size
    image = np.random.default_rng(0).integers(0, 256, (1, h, w, backbone.metadata.preprocessing.channels), np.uint8)
    return 1000 * median_seconds(functools.partial(backbone.embed, image), calls)


def cell(path: Path) -> str:
    if not path.is_file():
        return "—"
    result = json.loads(path.read_text())
    return f"{100 * result['accuracy']:.1f} ± {100 * result['ci95']:.1f}"


def auroc(path: Path) -> str:
    found = re.search(r"\| cosine to nearest mean[^|]*\| ([0-9.]+) \|", path.read_text()) if path.is_file() else None
    return found.group(1) if found else "—"


def main(out: Path) -> None:
    print(f"CPU: {(out / 'cpu.txt').read_text().split(':', 1)[-1].strip()}")
    print("| backbone | precision | 5-way 1-shot | 20-way 1-shot | open-set AUROC | ms / image |")
    print("|---|---|---|---|---|---|")
    for name, label in ROWS.items():
        for precision in ("model", "model.int8"):
            model = out / name / f"{precision}.onnx"
            if not model.is_file():
                continue
            print(f"| {label} | {'INT8' if precision.endswith('int8') else 'FP32'} | "
                  f"{cell(out / name / f'{precision}.eval5.json')} | {cell(out / name / f'{precision}.eval20.json')} | "
                  f"{auroc(out / name / 'openset.txt') if precision == 'model' else ''} | {latency_ms(model):.2f} |")
    omniglot = out / "omniglot-lite0-imprint" / "eval20.json"
    if omniglot.is_file():
        print(f"\nOmniglot, 20-way 1-shot within alphabet, distinct drawers, EfficientNet-Lite0 ImageNet with no "
              f"meta-training: {cell(omniglot)}%")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
