"""Parsing of anil-edge's ONNX metadata, collecting every problem before raising."""

from __future__ import annotations

import json
from typing import Any, Mapping

import numpy as np

from ..errors import ModelError, raise_if_problems
from .metadata import (
    FORMAT_VERSION,
    METADATA_KEY,
    VERSION_KEY,
    HeadSettings,
    Preprocessing,
    TrainingInfo,
    check_metadata,
    decode_array,
)

_MISSING = object()


class _Fields:
    """Typed access to a JSON document that records a problem per missing or mistyped field."""

    def __init__(self, doc: Any, problems: list[str]):
        self.doc = doc if isinstance(doc, dict) else {}
        self.problems = problems

    def get(self, path: str, kind: type | tuple[type, ...]) -> Any:
        node: Any = self.doc
        for part in path.split("."):
            node = node.get(part, _MISSING) if isinstance(node, dict) else _MISSING
        if node is _MISSING:
            self.problems.append(f"missing field '{path}'")
            return None
        if not isinstance(node, kind) or (isinstance(node, bool) and bool not in _tuple(kind)):
            expected = " or ".join(k.__name__ for k in _tuple(kind))
            self.problems.append(f"field '{path}' must be {expected}, found {type(node).__name__} {node!r:.40}")
            return None
        return node

    def numbers(self, path: str) -> tuple[float, ...]:
        values = self.get(path, list) or []
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
            self.problems.append(f"field '{path}' must be a list of numbers, found {values!r:.60}")
            return ()
        return tuple(float(v) for v in values)


def _tuple(kind):
    return kind if isinstance(kind, tuple) else (kind,)


def parse_props(cls, props: Mapping[str, str], source: str):
    """Build ``cls`` (ModelMetadata) from ``metadata_props``; ModelError on any problem."""
    if VERSION_KEY not in props or METADATA_KEY not in props:
        found = sorted(props) or "none"
        raise ModelError(
            f"{source} carries no anil-edge metadata: expected the metadata_props keys "
            f"'{VERSION_KEY}' and '{METADATA_KEY}', found keys: {found}. "
            "Export the backbone with anil-edge so that the runtime knows its preprocessing and head."
        )
    version = props[VERSION_KEY]
    if version != str(FORMAT_VERSION):
        raise ModelError(
            f"{source} has anil-edge metadata format version {version!r}; this runtime reads version "
            f"{FORMAT_VERSION}. Re-export the model or install the matching anil-edge version."
        )
    try:
        doc = json.loads(props[METADATA_KEY])
    except json.JSONDecodeError as exc:
        raise ModelError(f"{source} has corrupted anil-edge metadata (not valid JSON: {exc})") from None
    problems: list[str] = []
    f = _Fields(doc, problems)
    size = f.get("preprocessing.input_size", list) or [0, 0]
    preprocessing = Preprocessing(
        input_size=tuple(int(v) for v in size) if len(size) == 2 else (0, 0),
        channels=f.get("preprocessing.channels", int) or 0,
        mean=f.numbers("preprocessing.mean"),
        std=f.numbers("preprocessing.std"),
        invert=bool(f.get("preprocessing.invert", bool)),
        resize=f.get("preprocessing.resize", str) or "",
    )
    weight = decode_array(f.get("head.weight", dict), "head.weight", problems)
    bias = decode_array(f.get("head.bias", dict), "head.bias", problems)
    head = HeadSettings(
        init=f.get("head.init", str) or "",
        lr=float(f.get("head.lr", (int, float)) or 0.0),
        steps=f.get("head.steps", int) or 0,
        weight=weight if weight is not None else _empty(),
        bias=bias if bias is not None else _empty()[0],
    )
    training = TrainingInfo(
        ways=f.get("training.ways", int) or 0,
        shots=f.get("training.shots", int) or 0,
        dataset=f.get("training.dataset", str) or "",
    )
    meta = cls(
        preprocessing=preprocessing,
        embedding_dim=f.get("embedding_dim", int) or 0,
        head=head,
        training=training,
        backbone_sha256=f.get("backbone_sha256", str) or "",
        anil_edge_version=f.get("anil_edge_version", str) or "",
        extra=f.get("extra", dict) or {},
    )
    raise_if_problems(problems, ModelError, f"{source} has malformed anil-edge metadata")
    check_metadata(meta, source)
    return meta


def _empty():
    return np.zeros((0, 0), dtype=np.float32)
