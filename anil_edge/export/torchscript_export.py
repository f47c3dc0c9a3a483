"""Backbone -> TorchScript (traced), with the same anil-edge metadata as the ONNX file.

The metadata travels as an extra file inside the archive (``anil_edge_metadata.json``: the
ONNX ``metadata_props`` as one JSON object); :func:`read_torchscript_metadata` reads it back.
"""

from __future__ import annotations

import io
import json
import os
import warnings
from typing import TYPE_CHECKING, Any

from ..atomic import write_atomically
from ..errors import ModelError, require
from ..runtime.metadata import ModelMetadata
from ..runtime.metadata_props import metadata_from_props, metadata_to_props

if TYPE_CHECKING:
    from ..train.backbones import BackboneModule

EXTRA_FILE = "anil_edge_metadata.json"


def export_torchscript(backbone: BackboneModule, path: str | os.PathLike[str], meta: ModelMetadata) -> None:
    """Trace ``backbone`` (eval mode) on a batch of 2 and save it with ``meta``, atomically."""
    torch = require("torch", "train")
    backbone = backbone.eval()
    height, width = meta.preprocessing.input_size
    example = torch.randn(2, meta.preprocessing.channels, height, width)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(backbone, example, check_inputs=[(torch.randn(5, *example.shape[1:]),)])
        buffer = io.BytesIO()
        torch.jit.save(traced, buffer, _extra_files={EXTRA_FILE: json.dumps(metadata_to_props(meta))})
    write_atomically(path, buffer.getvalue(), ModelError, "the TorchScript model to")


def read_torchscript_metadata(path: str | os.PathLike[str]) -> tuple[Any, ModelMetadata]:
    """The scripted module (CPU) and its metadata."""
    torch = require("torch", "train")
    extra = {EXTRA_FILE: ""}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # torch 2.14 deprecates TorchScript
            module = torch.jit.load(str(path), map_location="cpu", _extra_files=extra)
    except Exception as exc:  # torch raises RuntimeError / ValueError for unreadable archives
        raise ModelError(f"cannot load {path} as TorchScript: {exc}") from None
    if not extra[EXTRA_FILE]:
        raise ModelError(f"{path}: no {EXTRA_FILE} inside: not exported by anil-edge")
    return module, metadata_from_props(json.loads(extra[EXTRA_FILE]), source=str(path))
