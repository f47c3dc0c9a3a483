"""The files beside ``model.onnx`` that let any onnxruntime binding enroll and classify:

- ``model.head_adapt.onnx`` and ``model.head_classify.onnx`` (:mod:`.head_graphs`);
- ``model.pixels.onnx``: the backbone taking raw uint8 pixels (:mod:`.pixel_input`), and
  ``model.int8.pixels.onnx``, the same for the INT8 backbone when one is exported;
- ``model.preprocess.onnx``: decoded RGBA of any size → those pixels, exactly as the runtime and
  training decode (:mod:`.preprocess_graph`; every resize filter but ``nearest``);
- ``model.json``: the sidecar — the model's metadata document (some bindings, such as
  onnxruntime-web, cannot read custom metadata), every file's SHA-256 and its inputs and outputs.

Each graph is checked against the numpy runtime before it is written; any mismatch beyond the
tolerance fails the export with every mismatch listed.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ..atomic import atomic_write
from ..errors import ModelError, raise_if_problems, require
from ..runtime.backbone import Backbone
from ..runtime.episodes import class_means, fit_head
from ..runtime.export_files import (
    ADAPT_CHECK,
    ADAPT_INPUTS,
    ADAPT_OUTPUTS,
    CLASSIFY_INPUTS,
    CLASSIFY_OUTPUTS,
    EMBEDDINGS,
    IMAGES,
    PIXELS,
    RGBA,
    SUFFIXES,
)
from ..runtime.head import predict_proba
from ..runtime.head_sessions import HeadGraphs
from ..runtime.metadata import ModelMetadata
from ..runtime.metadata_props import metadata_document
from ..runtime.open_set import open_set_scores
from .head_graphs import build_adapt_graph, build_classify_graph
from .int8_check import row_cosines
from .onnx_export import write_onnx
from .pixel_input import with_pixel_input
from .preprocess_graph import build_preprocess_graph, check_preprocess_graph, supports

INT8_PIXELS_COSINE = 0.999  # INT8 pixel model vs the INT8 backbone, per image
HEAD_RTOL = 1e-5  # ONNX head graphs vs the numpy runtime, relative to the largest value, for D <= 84; for wider
# embeddings D × float32's eps: the dot products over D are summed in another order by each (1.5e-4 at D = 1280)
PIXELS_ATOL = 1e-4  # pixel-input backbone vs the float backbone + numpy preprocessing, × max(1, max |embedding|)
SIDECAR_FORMAT = "anil-edge-sidecar"


def write_deployment_files(model_path: Path, stage: Callable[[str], Path], pixels: bool,
                           int8_path: Path | None = None) -> dict[str, Path]:
    """Build, check and write the head graphs (and the pixel models: FP32, and INT8 when
    ``int8_path`` is given) for the staged ``model_path``; returns {kind: staged path}.
    ``stage(name)`` gives the staging path of an output file."""
    backbone = Backbone(model_path, device="cpu")
    meta = backbone.metadata
    files = {kind: stage(SUFFIXES[kind]) for kind in ("head_adapt", "head_classify")}
    write_onnx(build_adapt_graph(meta.adaptation, meta.learned_head, meta.embedding_dim), files["head_adapt"])
    write_onnx(build_classify_graph(meta.embedding_dim), files["head_classify"])
    check_head_graphs(files["head_adapt"], files["head_classify"], meta)
    if pixels:
        onnx = require("onnx", "train")
        sources = {"backbone_pixels": (model_path, backbone)}
        if int8_path is not None:
            sources["backbone_int8_pixels"] = (int8_path, Backbone(int8_path, device="cpu", allow_inexact=True))
        for kind, (source, model) in sources.items():
            files[kind] = stage(SUFFIXES[kind])
            write_onnx(with_pixel_input(onnx.load(str(source)), meta.preprocessing), files[kind])
            check_pixel_model(files[kind], model)
        if supports(meta.preprocessing):  # decoded RGBA of any size -> the pixel model's input
            files["preprocess"] = stage(SUFFIXES["preprocess"])
            write_onnx(build_preprocess_graph(meta.preprocessing), files["preprocess"])
            check_preprocess_graph(files["preprocess"], meta.preprocessing)
    return files


def check_head_graphs(adapt: Path, classify: Path, meta: ModelMetadata, seed: int = 0) -> None:
    """The graphs agree with the numpy runtime on random tasks (C = 1, a few, more than the ways)."""
    graphs = HeadGraphs.from_files(adapt, classify)
    rng = np.random.default_rng(seed)
    problems, rtol = [], max(HEAD_RTOL, meta.embedding_dim * float(np.finfo(np.float32).eps))
    for n_classes, shots in ((1, 1), (3, 2), (meta.training.ways + 3, 1)):
        E = rng.normal(0, 1, (n_classes * shots, meta.embedding_dim)).astype(np.float32)
        y = np.repeat(np.arange(n_classes), shots)
        Q = rng.normal(0, 1, (7, meta.embedding_dim)).astype(np.float32)
        W, b, means = graphs.adapt(E, y)
        P, score = graphs.classify(Q, W, b, means)
        Wn, bn = fit_head(E, y, n_classes, meta.adaptation, meta.learned_head)
        Mn = class_means(E, y, n_classes)
        for name, got, want in (("weight", W, Wn), ("bias", b, bn), ("class_means", means, Mn),
                                ("probabilities", P, predict_proba(Q, Wn, bn)),
                                ("open_set_score", score, open_set_scores(Q, Mn))):
            err = float(np.abs(got - want).max() / max(1.0, float(np.abs(want).max())))
            if not err <= rtol:
                problems.append(f"{name} with C={n_classes}: relative error {err:.2e} > {rtol:.2g}")
    raise_if_problems(problems, ModelError, "the ONNX head graphs disagree with the numpy runtime")


def check_pixel_model(path: Path, backbone: Backbone, seed: int = 0) -> None:
    """The pixel model against its float backbone on the runtime's preprocessing of random
    pixels: max |Δ| ≤ :data:`PIXELS_ATOL` × the embeddings' scale for FP32; for INT8, where the
    graph's and numpy's preprocessing may round an input 1 ulp apart and so land one quantum
    apart, every embedding's cosine ≥ :data:`INT8_PIXELS_COSINE`."""
    ort = require("onnxruntime", "cpu")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    p = backbone.metadata.preprocessing
    x = np.random.default_rng(seed).integers(0, 256, (5, *p.input_size, p.channels), dtype=np.uint8)
    want, got = backbone.embed(x), session.run(None, {PIXELS: x})[0]
    if backbone.metadata.extra.get("precision") == "int8":
        cosine = float(row_cosines(got, want).min())
        if not cosine >= INT8_PIXELS_COSINE:
            raise ModelError(f"the pixel-input backbone {path.name} disagrees with its INT8 backbone: lowest embedding "
                             f"cosine {cosine:.6f} < {INT8_PIXELS_COSINE}")
        return
    err = float(np.abs(got - want).max())
    tolerance = PIXELS_ATOL * max(1.0, float(np.abs(want).max()))
    if not err <= tolerance:
        raise ModelError(f"the pixel-input backbone {path.name} disagrees with its float backbone: max |Δ| {err:.2e} > "
                         f"{tolerance:.3g}")


def write_sidecar(path: Path, meta: ModelMetadata, files: dict[str, Path], names: dict[str, str],
                  int8_meta: ModelMetadata | None = None, pixel_batch: int | None = None) -> None:
    """``model.json``: the metadata document, and each file's name, SHA-256 and inputs/outputs.
    The INT8 backbones' entries also carry the INT8 model's own open-set thresholds and
    quantization (its embeddings differ slightly from FP32's: ``open_set`` is null when the
    INT8 model was not calibrated). ``pixel_batch``: the pixel models' fixed batch, if any."""
    p = meta.preprocessing
    floats = ({IMAGES: ["float32", ["N", p.channels, *p.input_size]]}, {EMBEDDINGS: ["float32", ["N", meta.embedding_dim]]})
    n = pixel_batch or "N"
    pixels = ({PIXELS: ["uint8", [n, *p.input_size, p.channels]]}, {EMBEDDINGS: ["float32", [n, meta.embedding_dim]]})
    io_of = {
        "backbone": floats, "backbone_int8": floats, "backbone_pixels": pixels, "backbone_int8_pixels": pixels,
        "preprocess": ({RGBA: ["uint8", ["N", "H", "W", 4]]}, {PIXELS: ["uint8", ["N", *p.input_size, p.channels]]}),
        "head_adapt": (dict(zip(ADAPT_INPUTS, (["float32", ["N", meta.embedding_dim]], ["int64", ["N"]]))),
                       {**dict(zip(ADAPT_OUTPUTS, (["float32", ["C", meta.embedding_dim]], ["float32", ["C"]],
                                                   ["float32", ["C", meta.embedding_dim]]))), ADAPT_CHECK: ["int64", []]}),
        "head_classify": (dict(zip(CLASSIFY_INPUTS, (["float32", ["Q", meta.embedding_dim]],
                                                     ["float32", ["C", meta.embedding_dim]], ["float32", ["C"]],
                                                     ["float32", ["C", meta.embedding_dim]]))),
                          dict(zip(CLASSIFY_OUTPUTS, (["float32", ["Q", "C"]], ["float32", ["Q", "C"]],
                                                      ["float32", ["Q"]])))),
    }
    doc: dict[str, Any] = {
        "format": SIDECAR_FORMAT, "version": 1, "metadata": metadata_document(meta),
        "labels": "head_adapt takes class indices 0..C-1 (C = max(labels) + 1, every class with at least one "
                  "example); column c of probabilities is class c",
        "files": {kind: {"path": names[kind], "sha256": hashlib.sha256(staged.read_bytes()).hexdigest(),
                         "inputs": io_of[kind][0], "outputs": io_of[kind][1]} for kind, staged in files.items()},
    }
    if int8_meta is not None:
        int8_doc = metadata_document(int8_meta)
        for kind in ("backbone_int8", "backbone_int8_pixels"):
            if kind in doc["files"]:
                doc["files"][kind].update(open_set=int8_doc.get("open_set"),
                                          quantization=int8_doc.get("extra", {}).get("quantization"))
    with atomic_write(path) as handle:
        handle.write(json.dumps(doc, indent=1, sort_keys=True).encode())
