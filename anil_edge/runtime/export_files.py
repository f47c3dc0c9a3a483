"""The files one export writes and every graph's input and output names: the contract that the
graph builders (:mod:`anil_edge.export`), the Python ``engine="onnx"``, the sidecar and the
JavaScript clients (``examples/web/anil_edge_client.mjs``, checked against this module by a test)
share. Defined once, here.

An export is ``model.onnx`` plus companions named ``model.<suffix>`` beside it.
"""

from __future__ import annotations

import os
from pathlib import Path

# kind (model.json's "files" key) -> suffix after "model."; the FP32 backbone is model.onnx itself.
SUFFIXES = {
    "backbone_int8": "int8.onnx",  # the INT8 (QDQ) backbone
    "torchscript": "ts",
    "sidecar": "json",  # model.json
    "head_adapt": "head_adapt.onnx",
    "head_classify": "head_classify.onnx",
    "backbone_pixels": "pixels.onnx",  # uint8 pixels at the model's size -> embeddings
    "backbone_int8_pixels": "int8.pixels.onnx",
    "preprocess": "preprocess.onnx",  # decoded RGBA of any size -> pixels
}
ORT_KINDS = ("backbone_pixels", "backbone_int8_pixels", "head_adapt", "head_classify", "preprocess")  # --ort

IMAGES, EMBEDDINGS = "images", "embeddings"  # the float backbones: (N, C, H, W) -> (N, D)
PIXELS, RGBA = "pixels", "rgba"  # the pixel backbones' input, the preprocessing graph's input
ADAPT_INPUTS = ("embeddings", "labels")  # (N, D) float32, (N,) int64 class indices 0..C-1
ADAPT_OUTPUTS = ("weight", "bias", "class_means")  # (C, D), (C,), (C, D): the enrolled head
ADAPT_CHECK = "label_problems"  # () int64: examples ignored + classes left empty; 0 for well-formed labels
EMPTY_CLASS_BIAS = -1e30  # an empty class's bias in the adapt graph: probability 0, finite in float32
CLASSIFY_INPUTS = ("queries", "weight", "bias", "class_means")  # (Q, D) and the adapted head
CLASSIFY_OUTPUTS = ("logits", "probabilities", "open_set_score")  # (Q, C), (Q, C), (Q,)


def output_suffixes() -> tuple[str, ...]:
    """Every suffix an export may write beside model.onnx (its .ort files too)."""
    ort = tuple(SUFFIXES[kind].removesuffix(".onnx") + ".ort" for kind in ORT_KINDS)
    return (*SUFFIXES.values(), *ort)


def beside(model: str | os.PathLike[str], suffix: str) -> Path:
    """``dir/model.onnx`` → ``dir/model.<suffix>``: where the export puts each companion file."""
    path = Path(model)
    stem = path.name[: -len(".onnx")] if path.name.lower().endswith(".onnx") else path.name
    return path.with_name(f"{stem}.{suffix}")


def family_base(backbone: str | os.PathLike[str]) -> Path:
    """The FP32 model a backbone file belongs to: ``model.int8.onnx`` → ``model.onnx`` (the INT8
    backbone feeds the same head graphs, written once beside the FP32 model)."""
    path = Path(backbone)
    name = path.name
    return path.with_name(name[: -len(".int8.onnx")] + ".onnx") if name.lower().endswith(".int8.onnx") else path
