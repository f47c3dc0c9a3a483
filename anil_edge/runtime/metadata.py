"""The metadata an exported ONNX backbone carries: everything a device needs to use it.

It is stored in the model's ``metadata_props`` under two keys: ``anil_edge.format_version``
and ``anil_edge.metadata`` (a JSON document). The meta-learned head rows travel as base64
float32 so that they round-trip bit-exactly. The runtime refuses a model whose metadata is
missing, malformed, or of a format version it does not know.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np

from ..errors import ModelError, raise_if_problems

FORMAT_VERSION = 1
VERSION_KEY = "anil_edge.format_version"
METADATA_KEY = "anil_edge.metadata"
HEAD_INIT_RULES = ("zeros", "mean", "prototype")
RESIZE_FILTERS = ("nearest", "bilinear", "bicubic", "lanczos")


@dataclass(frozen=True)
class Preprocessing:
    """How an image becomes the backbone's input tensor (1 or 3, H, W)."""

    input_size: tuple[int, int]  # (height, width) the backbone expects
    channels: int  # 1 = grayscale, 3 = RGB
    mean: tuple[float, ...]  # per channel, subtracted after scaling pixels to [0, 1] (and inverting)
    std: tuple[float, ...]  # per channel, divides after the mean is subtracted
    invert: bool = False  # x -> 1 - x after scaling: dark ink on white paper becomes strokes = 1 (Omniglot)
    resize: str = "bilinear"  # filter used to resize file and PIL images to input_size


@dataclass(frozen=True, eq=False)
class HeadSettings:
    """ANIL's inner loop as trained: the head initialisation and the SGD steps on it."""

    init: str  # rule for a head of C classes: "zeros", "mean" (each row the mean learned row), "prototype"
    lr: float  # fast_lr: the inner-loop SGD learning rate used in meta-training
    steps: int  # adaptation_steps: inner-loop SGD steps used in meta-training
    weight: np.ndarray  # (ways, D) float32 meta-learned head rows
    bias: np.ndarray  # (ways,) float32 meta-learned head biases


@dataclass(frozen=True)
class TrainingInfo:
    """Where the backbone came from (informational)."""

    ways: int  # classes per meta-training task
    shots: int  # support examples per class in meta-training
    dataset: str  # the meta-training dataset's name


@dataclass(frozen=True, eq=False)
class ModelMetadata:
    """Everything the runtime needs to use an exported backbone."""

    preprocessing: Preprocessing
    embedding_dim: int  # D: length of one embedding
    head: HeadSettings
    training: TrainingInfo
    backbone_sha256: str  # hash of the exported graph and weights; binds enrollment states to it
    anil_edge_version: str  # version of anil-edge that exported the model
    format_version: int = FORMAT_VERSION
    extra: Mapping[str, Any] = field(default_factory=dict)  # free-form provenance (not interpreted)

    def to_props(self) -> dict[str, str]:
        """The ``metadata_props`` entries (string to string) that describe this model."""
        doc = {
            "anil_edge_version": self.anil_edge_version,
            "backbone_sha256": self.backbone_sha256,
            "embedding_dim": self.embedding_dim,
            "preprocessing": {
                "input_size": list(self.preprocessing.input_size),
                "channels": self.preprocessing.channels,
                "mean": list(self.preprocessing.mean),
                "std": list(self.preprocessing.std),
                "invert": self.preprocessing.invert,
                "resize": self.preprocessing.resize,
            },
            "head": {
                "init": self.head.init,
                "lr": self.head.lr,
                "steps": self.head.steps,
                "weight": _encode(self.head.weight),
                "bias": _encode(self.head.bias),
            },
            "training": {"ways": self.training.ways, "shots": self.training.shots, "dataset": self.training.dataset},
            "extra": dict(self.extra),
        }
        return {VERSION_KEY: str(self.format_version), METADATA_KEY: json.dumps(doc, sort_keys=True)}

    @classmethod
    def from_props(cls, props: Mapping[str, str], source: str = "model") -> "ModelMetadata":
        """Parse ``metadata_props``; raise :class:`ModelError` listing every problem found."""
        from .metadata_parse import parse_props

        return parse_props(cls, props, source)


def _encode(array: np.ndarray) -> dict[str, Any]:
    array = np.ascontiguousarray(array, dtype="<f4")
    return {"dtype": "float32", "shape": list(array.shape), "base64": base64.b64encode(array.tobytes()).decode()}


def decode_array(doc: Any, name: str, problems: list[str]) -> np.ndarray | None:
    """Inverse of :func:`_encode`; records a problem and returns None when malformed."""
    try:
        shape = tuple(int(n) for n in doc["shape"])
        raw = base64.b64decode(doc["base64"], validate=True)
        array = np.frombuffer(raw, dtype="<f4").reshape(shape).astype(np.float32)
    except (KeyError, TypeError, ValueError) as exc:
        problems.append(f"{name} is not a base64 float32 array ({type(exc).__name__}: {exc})")
        return None
    if not np.isfinite(array).all():
        problems.append(f"{name} holds NaN or infinite values")
        return None
    return array


def check_metadata(meta: ModelMetadata, source: str = "model") -> None:
    """Raise :class:`ModelError` listing every inconsistency in ``meta``."""
    problems: list[str] = []
    p, h = meta.preprocessing, meta.head
    if p.channels not in (1, 3):
        problems.append(f"preprocessing.channels must be 1 or 3, found {p.channels}")
    if len(p.input_size) != 2 or min(p.input_size) < 1:
        problems.append(f"preprocessing.input_size must be (height, width) >= 1, found {p.input_size}")
    for name, values in (("mean", p.mean), ("std", p.std)):
        if len(values) != p.channels:
            problems.append(f"preprocessing.{name} must have {p.channels} values (one per channel), found {len(values)}")
    if any(s <= 0 for s in p.std):
        problems.append(f"preprocessing.std must be > 0, found {p.std}")
    if p.resize not in RESIZE_FILTERS:
        problems.append(f"preprocessing.resize must be one of {RESIZE_FILTERS}, found {p.resize!r}")
    if meta.embedding_dim < 1:
        problems.append(f"embedding_dim must be >= 1, found {meta.embedding_dim}")
    if h.init not in HEAD_INIT_RULES:
        problems.append(f"head.init must be one of {HEAD_INIT_RULES}, found {h.init!r}")
    if not (np.isfinite(h.lr) and h.lr >= 0) or h.steps < 0:
        problems.append(f"head.lr must be >= 0 and head.steps >= 0, found lr={h.lr}, steps={h.steps}")
    if h.weight.ndim != 2 or h.weight.shape[1] != meta.embedding_dim or h.bias.shape != h.weight.shape[:1]:
        problems.append(
            f"head weight/bias must be (ways, {meta.embedding_dim}) and (ways,), "
            f"found {h.weight.shape} and {h.bias.shape}"
        )
    if len(meta.backbone_sha256) != 64:
        problems.append(f"backbone_sha256 must be 64 hex digits, found {meta.backbone_sha256!r}")
    raise_if_problems(problems, ModelError, f"{source} has inconsistent anil-edge metadata")
