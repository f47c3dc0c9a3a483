"""Backbone -> ONNX with anil-edge's metadata, written atomically.

Exporter path (pinned): ``torch.onnx.export(..., dynamo=True)`` at opset 18 (17 up to the
installed onnx's newest are accepted) with a dynamic batch axis. The dynamo exporter
specialises size-1 dimensions, so the example batch has 2 images.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import warnings
from typing import TYPE_CHECKING, Any

from .. import __version__
from ..atomic import write_atomically
from ..errors import InputError, ModelError, require
from ..runtime.adaptation import Adaptation
from ..runtime.export_files import EMBEDDINGS, IMAGES
from ..runtime.metadata import LearnedHead, ModelMetadata, Preprocessing, TrainingInfo
from ..runtime.metadata_props import metadata_to_props

if TYPE_CHECKING:
    import onnx

    from ..train.backbones import BackboneModule

OPSET = 18
MIN_OPSET = 17
INPUT_NAME, OUTPUT_NAME = IMAGES, EMBEDDINGS  # the float backbone's (runtime/export_files.py)


def export_onnx(
    backbone: BackboneModule,
    path: str | os.PathLike[str],
    *,
    preprocessing: Preprocessing,
    adaptation: Adaptation,
    learned_head: LearnedHead,
    training: TrainingInfo,
    opset: int = OPSET,
    extra: dict | None = None,
) -> ModelMetadata:
    """Export ``backbone`` (a torch module, put in eval mode) to ``path``; return the metadata written.

    The model takes ``images`` (N, C, H, W) float32 and returns ``embeddings`` (N, D).
    """
    model, meta = build_onnx(backbone, preprocessing=preprocessing, adaptation=adaptation,
                             learned_head=learned_head, training=training, opset=opset, extra=extra)
    write_onnx(model, path)
    return meta


def build_onnx(backbone: BackboneModule, *, preprocessing: Preprocessing, adaptation: Adaptation,
               learned_head: LearnedHead, training: TrainingInfo, opset: int = OPSET,
               extra: dict | None = None) -> tuple[onnx.ModelProto, ModelMetadata]:
    """The checked ONNX ``ModelProto`` of ``backbone`` with its metadata, and that metadata."""
    torch = require("torch", "train")
    onnx = require("onnx", "train")
    check_opset(opset)
    backbone = backbone.eval()
    height, width = preprocessing.input_size
    example = torch.zeros(2, preprocessing.channels, height, width)
    with torch.no_grad():
        embedding_dim = int(backbone(example).shape[1])
    with warnings.catch_warnings(), _export_ops(backbone):
        warnings.simplefilter("ignore")
        program = torch.onnx.export(
            backbone,
            (example,),
            dynamo=True,
            opset_version=opset,
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            dynamic_shapes=({0: torch.export.Dim("batch")},),
            verbose=False,
        )
    model = program.model_proto
    meta = ModelMetadata(
        preprocessing=preprocessing,
        embedding_dim=embedding_dim,
        adaptation=adaptation,
        learned_head=learned_head,
        training=training,
        backbone_sha256=graph_sha256(model),
        anil_edge_version=__version__,
        extra=dict(extra or {}),
    )
    set_metadata(model, meta)
    onnx.checker.check_model(model, full_check=True)
    return model, meta


@contextlib.contextmanager
def _export_ops(backbone: Any):
    """Modules with an ``export_ops`` switch (``ScaledNormalized``) use their export formulation
    (operators NNAPI and Core ML run) while the model is exported, and their own after."""
    switches = [m for m in backbone.modules() if hasattr(m, "export_ops")]
    for module in switches:
        module.export_ops = True
    try:
        yield
    finally:
        for module in switches:
            module.export_ops = False


def check_opset(opset: int) -> None:
    onnx = require("onnx", "train")
    newest = onnx.defs.onnx_opset_version()
    if not MIN_OPSET <= opset <= newest:
        raise InputError(f"unsupported opset {opset}: expected {MIN_OPSET} to {newest} (the installed onnx's newest)")


def write_onnx(model, path: str | os.PathLike[str]) -> None:
    write_atomically(path, model.SerializeToString(), ModelError, "the model to")


def graph_sha256(model) -> str:
    """SHA-256 of the model's graph and weights, ignoring its metadata_props."""
    stripped = type(model)()
    stripped.CopyFrom(model)
    del stripped.metadata_props[:]
    return hashlib.sha256(stripped.SerializeToString(deterministic=True)).hexdigest()


def rewrite_metadata(path: str | os.PathLike[str], meta: ModelMetadata) -> None:
    """Give the ONNX file at ``path`` ``meta`` as its anil-edge metadata (in place, atomically)."""
    onnx = require("onnx", "train")
    model = onnx.load(str(path))
    set_metadata(model, meta)
    write_onnx(model, path)


def set_metadata(model, meta: ModelMetadata) -> None:
    """Replace the model's anil-edge ``metadata_props`` entries with ``meta``'s."""
    props = metadata_to_props(meta)
    keep = [(p.key, p.value) for p in model.metadata_props if p.key not in props]
    del model.metadata_props[:]
    for key, value in keep + sorted(props.items()):
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
