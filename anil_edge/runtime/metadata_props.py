"""anil-edge metadata as ONNX ``metadata_props``: written in format 2, read in formats 1 and 2.

Two keys: ``anil_edge.format_version`` and ``anil_edge.metadata`` (a JSON document). The
meta-learned head rows travel as base64 float32 so that they round-trip bit-exactly. Reading
checks every field's type strictly (a string is not a bool, a float is not an int) and
collects every problem before raising :class:`ModelError`.

Format 1 (anil-edge 0.1) kept the inner loop as ``head.{init, lr, steps}`` with the device
rules ``zeros/mean/prototype`` and the data split under ``extra.data``; it is read into the
same :class:`ModelMetadata` (``"mean"`` is the device form of ``"learned"``).
"""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import numpy as np

from ..errors import ModelError, raise_if_problems
from .adaptation import Adaptation, head_init_problems, lr_problems, steps_problems
from .documents import to_document
from .legacy import v1_head_init
from .metadata import DataProvenance, LearnedHead, ModelMetadata, Preprocessing, TrainingInfo, check_metadata
from .open_set import SCORE, OpenSetCalibration

FORMAT_VERSION = 2
READABLE_VERSIONS = (1, 2)
VERSION_KEY = "anil_edge.format_version"
METADATA_KEY = "anil_edge.metadata"
_MISSING = object()


def metadata_document(meta: ModelMetadata) -> dict[str, Any]:
    """The JSON document (format 2) describing ``meta``; also the sidecar's content. Derived
    from the dataclasses' fields (:func:`.documents.to_document`): the keys are the field names."""
    return to_document(meta)


def metadata_to_props(meta: ModelMetadata) -> dict[str, str]:
    """The ``metadata_props`` entries (string to string) that describe ``meta``."""
    return {VERSION_KEY: str(FORMAT_VERSION), METADATA_KEY: json.dumps(metadata_document(meta), sort_keys=True)}


def metadata_from_props(props: Mapping[str, str], source: str = "model") -> ModelMetadata:
    """Parse ``metadata_props`` (format 1 or 2); :class:`ModelError` listing every problem."""
    if VERSION_KEY not in props or METADATA_KEY not in props:
        raise ModelError(
            f"{source} carries no anil-edge metadata: expected the metadata_props keys '{VERSION_KEY}' and "
            f"'{METADATA_KEY}', found keys: {sorted(props) or 'none'}. "
            "Export the backbone with anil-edge so that the runtime knows its preprocessing and head."
        )
    version = props[VERSION_KEY]
    if version not in {str(v) for v in READABLE_VERSIONS}:
        raise ModelError(
            f"{source} has anil-edge metadata format version {version!r}; this runtime reads versions "
            f"{', '.join(map(str, READABLE_VERSIONS))}. Re-export the model or install the matching anil-edge."
        )
    try:
        doc = json.loads(props[METADATA_KEY])
    except (json.JSONDecodeError, RecursionError) as exc:
        raise ModelError(f"{source} has corrupted anil-edge metadata (not valid JSON: {exc})") from None
    problems: list[str] = []
    f = _Fields(doc, problems)
    meta = (_read_v1 if version == "1" else _read_v2)(f)
    raise_if_problems(problems, ModelError, f"{source} has malformed anil-edge metadata")
    check_metadata(meta, source)
    return meta


def _read_v2(f: _Fields) -> ModelMetadata:
    adaptation = _adaptation(f, "adaptation.adaptation_lr", "adaptation.adaptation_steps",
                             "adaptation.head_init", lambda rule: rule)
    head = LearnedHead(f.array("learned_head.weight", 2), f.array("learned_head.bias", 1))
    data = DataProvenance(
        dataset=f.get("training.data.dataset", str, ""),
        sources=tuple(f.strings("training.data.sources")),
        validation_fraction=f.number("training.data.validation_fraction"),
        test_fraction=f.number("training.data.test_fraction"),
        split_seed=f.get("training.data.split_seed", int, 0),
    )
    meta = _metadata(f, adaptation, head, data, f.get("extra", dict, {}))
    if isinstance(f.doc, dict) and "open_set" in f.doc:
        return replace(meta, open_set=_read_open_set(f))
    return meta


def _read_v1(f: _Fields) -> ModelMetadata:
    adaptation = _adaptation(f, "head.lr", "head.steps", "head.init", v1_head_init)
    head = LearnedHead(f.array("head.weight", 2), f.array("head.bias", 1))
    extra = dict(f.get("extra", dict, {}))
    old = extra.pop("data", None)
    dataset = f.get("training.dataset", str, "")
    if isinstance(old, dict):
        sub = _Fields(old, f.problems, prefix="extra.data.")
        data = DataProvenance(sub.get("dataset", str, dataset), tuple(sub.strings("sources")),
                              sub.number("validation_fraction"), sub.number("test_fraction"),
                              sub.get("split_seed", int, 0))
    else:
        data = DataProvenance(dataset)
    return _metadata(f, adaptation, head, data, extra, version2=False)


def _metadata(f: _Fields, adaptation: Adaptation, head: LearnedHead, data: DataProvenance,
              extra: dict, version2: bool = True) -> ModelMetadata:
    size = f.ints("preprocessing.input_size", 2)
    preprocessing = Preprocessing(
        input_size=(size[0], size[1]) if len(size) == 2 else (0, 0),
        channels=f.get("preprocessing.channels", int, 0),
        mean=tuple(f.numbers("preprocessing.mean")),
        std=tuple(f.numbers("preprocessing.std")),
        invert=f.get("preprocessing.invert", bool, False),
        resize=f.get("preprocessing.resize", str, ""),
        crop=f.get("preprocessing.crop", str, "") if version2 else "squash",
        crop_pct=f.number("preprocessing.crop_pct") if version2 else 1.0,
    )
    training = TrainingInfo(ways=f.get("training.ways", int, 0), shots=f.get("training.shots", int, 0), data=data)
    return ModelMetadata(
        preprocessing=preprocessing, embedding_dim=f.get("embedding_dim", int, 0), adaptation=adaptation,
        learned_head=head, training=training, backbone_sha256=f.get("backbone_sha256", str, ""),
        anil_edge_version=f.get("anil_edge_version", str, ""), extra=extra,
    )


def _adaptation(f: _Fields, lr_path: str, steps_path: str, init_path: str, rule) -> Adaptation:
    lr, steps, init = f.raw(lr_path), f.raw(steps_path), f.raw(init_path)
    if any(v is _MISSING for v in (lr, steps, init)):
        return Adaptation()  # a placeholder: the problem recorded makes parsing fail
    init = rule(init) if isinstance(init, str) else init
    found = lr_problems(lr, lr_path) + steps_problems(steps, steps_path) + head_init_problems(init, init_path)
    f.problems.extend(found)
    return Adaptation() if found else Adaptation(lr, steps, init)


def _read_open_set(f: _Fields) -> OpenSetCalibration | None:
    score = f.get("open_set.score", str, "")
    tables = {}
    for name in ("thresholds", "true_accept"):
        table = f.get(f"open_set.{name}", dict, {})
        try:
            tables[name] = {float(k): float(v) for k, v in table.items()
                            if not isinstance(v, bool) and isinstance(v, (int, float))}
        except ValueError:
            tables[name] = {}
        if len(tables[name]) != len(table) or not all(0 < k < 1 and math.isfinite(v) for k, v in tables[name].items()):
            f.problems.append(f"field 'open_set.{name}' must map rates in (0, 1) to finite numbers, found {table!r:.60}")
    if score != SCORE:
        f.problems.append(f"field 'open_set.score' must be {SCORE!r}, found {score!r}")
    counts = [f.get(f"open_set.{name}", int, 0) for name in ("episodes", "ways", "shots")]
    return OpenSetCalibration(score, tables["thresholds"], tables["true_accept"], *counts)


class _Fields:
    """Typed access to a JSON document; records a problem for each missing or mistyped field."""

    def __init__(self, doc: Any, problems: list[str], prefix: str = "") -> None:
        self.doc = doc if isinstance(doc, dict) else {}
        self.problems, self.prefix = problems, prefix
        if not isinstance(doc, dict):
            problems.append(f"the metadata document must be a JSON object, found {type(doc).__name__}")

    def raw(self, path: str) -> Any:
        node: Any = self.doc
        for part in path.split("."):
            node = node.get(part, _MISSING) if isinstance(node, dict) else _MISSING
        if node is _MISSING:
            self.problems.append(f"missing field '{self.prefix}{path}'")
        return node

    def get(self, path: str, kind: type, default: Any) -> Any:
        node = self.raw(path)
        if node is _MISSING:
            return default
        if not isinstance(node, kind) or (isinstance(node, bool) and kind is not bool):
            self.problems.append(f"field '{self.prefix}{path}' must be {kind.__name__}, "
                                 f"found {type(node).__name__} {node!r:.40}")
            return default
        return node

    def number(self, path: str) -> float:
        node = self.raw(path)
        if node is _MISSING:
            return 0.0
        if isinstance(node, bool) or not isinstance(node, (int, float)):
            self.problems.append(f"field '{self.prefix}{path}' must be a number, found {node!r:.40}")
            return 0.0
        return float(node)

    def _list(self, path: str, ok, what: str) -> list:
        values = self.get(path, list, [])
        if not all(ok(v) for v in values):
            self.problems.append(f"field '{self.prefix}{path}' must be a list of {what}, found {values!r:.60}")
            return []
        return values

    def numbers(self, path: str) -> list[float]:
        ok = lambda v: isinstance(v, (int, float)) and not isinstance(v, bool)  # noqa: E731
        return [float(v) for v in self._list(path, ok, "numbers")]

    def ints(self, path: str, n: int) -> list[int]:
        values = self._list(path, lambda v: isinstance(v, int) and not isinstance(v, bool), "integers")
        if values and len(values) != n:
            self.problems.append(f"field '{self.prefix}{path}' must hold {n} integers, found {values!r:.60}")
            return []
        return values

    def strings(self, path: str) -> list[str]:
        return self._list(path, lambda v: isinstance(v, str), "strings")

    def array(self, path: str, ndim: int) -> np.ndarray:
        empty = np.zeros((0,) * ndim, np.float32)
        doc = self.get(path, dict, None)
        if doc is None:
            return empty
        try:
            shape = tuple(doc["shape"])
            if len(shape) != ndim or not all(isinstance(s, int) and not isinstance(s, bool) and 0 <= s for s in shape):
                raise ValueError(f"shape must be {ndim} non-negative integers, found {doc['shape']!r:.40}")
            raw = base64.b64decode(doc["base64"], validate=True)
            array = np.frombuffer(raw, dtype="<f4").reshape(shape).astype(np.float32)
        except (KeyError, TypeError, ValueError) as exc:
            self.problems.append(f"field '{self.prefix}{path}' is not a base64 float32 array "
                                 f"({type(exc).__name__}: {exc})")
            return empty
        if not np.isfinite(array).all():
            self.problems.append(f"field '{self.prefix}{path}' holds NaN or infinite values")
            return empty
        return array
