"""The metadata an exported ONNX backbone carries: everything a device needs to use it.

Typed records, each checking its own values when built (:class:`ModelMetadata` what spans
them); :mod:`.metadata_props` writes it into (and reads it from) the model's
``metadata_props``. The runtime refuses a model whose metadata is missing, malformed,
inconsistent or of a format version it does not know.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import InputError, raise_if_problems
from ..schema import CROP_MODES, CROP_PCT, RESIZE_FILTERS, TEST_FRACTION
from .adaptation import Adaptation, HeadCalibration
from .open_set import OpenSetCalibration
from .whitening import WhiteningCalibration

IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class Preprocessing:
    """How an image becomes the backbone's input tensor (1 or 3, H, W)."""

    input_size: tuple[int, int]  # (height, width) the backbone expects
    channels: int  # 1 = grayscale, 3 = RGB
    mean: tuple[float, ...]  # per channel, subtracted after scaling pixels to [0, 1] (and inverting)
    std: tuple[float, ...]  # per channel, divides after the mean is subtracted
    invert: bool = False  # x -> 1 - x after scaling: dark ink on white paper becomes strokes = 1 (Omniglot)
    resize: str = "bilinear"  # filter used to resize file and PIL images to input_size
    crop: str = "squash"  # "squash": resize to input_size as is; "center": keep the aspect ratio, centre-crop
    crop_pct: float = 1.0  # "center": resize the shorter side to size / crop_pct, then crop (timm's crop_pct)

    def __post_init__(self) -> None:
        problems: list[str] = []
        if self.channels not in (1, 3):
            problems.append(f"channels must be 1 or 3, found {self.channels}")
        if len(self.input_size) != 2 or min(self.input_size) < 1:
            problems.append(f"input_size must be (height, width) >= 1, found {self.input_size}")
        for name, values in (("mean", self.mean), ("std", self.std)):
            if len(values) != self.channels:
                problems.append(f"{name} must have {self.channels} values (one per channel), found {len(values)}")
            if not np.isfinite(values).all():
                problems.append(f"{name} must be finite, found {values}")
        if any(s <= 0 for s in self.std):
            problems.append(f"std must be > 0, found {self.std}")
        if self.resize not in RESIZE_FILTERS:
            problems.append(f"resize must be one of {RESIZE_FILTERS}, found {self.resize!r}")
        if self.crop not in CROP_MODES or not CROP_PCT[0] <= self.crop_pct <= CROP_PCT[1]:
            problems.append(f"crop must be one of {CROP_MODES} and crop_pct in [{CROP_PCT[0]:g}, {CROP_PCT[1]:g}], "
                            f"found {self.crop!r} and {self.crop_pct}")
        raise_if_problems(problems, InputError, "invalid preprocessing")


@dataclass(frozen=True, eq=False)
class LearnedHead:
    """The meta-learned linear head (the start of ``head_init="learned"``)."""

    weight: np.ndarray  # (ways, D) float32
    bias: np.ndarray  # (ways,) float32


@dataclass(frozen=True)
class DataProvenance:
    """The data a model was trained on and how its classes were split, so that the same
    held-out classes can be rebuilt (``anil-edge evaluate model.onnx``)."""

    dataset: str  # the TrainConfig.dataset name ("glyphs", "omniglot", "folder", ...)
    sources: tuple[str, ...] = ()  # TrainConfig.data: where the data was read from
    validation_fraction: float = 0.15  # share of classes held out for validation
    test_fraction: float = 0.25  # share of classes held out for the final test
    split_seed: int = 0  # shuffles the groups before the split

    def __post_init__(self) -> None:
        problems = [f"{name} must lie in [0, 1), found {value}" for name, value in
                    (("validation_fraction", self.validation_fraction), ("test_fraction", self.test_fraction))
                    if not TEST_FRACTION[0] <= value < TEST_FRACTION[1]]  # a recorded provenance may hold 0 for either
        raise_if_problems(problems, InputError, "invalid data provenance")


@dataclass(frozen=True)
class TrainingInfo:
    """Where the backbone came from."""

    ways: int  # classes per meta-training task (rows of the learned head)
    shots: int  # support examples per class in meta-training
    data: DataProvenance  # the training data and its split

    def __post_init__(self) -> None:
        problems = [f"{name} must be >= 0, found {value}" for name, value in (("ways", self.ways), ("shots", self.shots))
                    if value < 0]
        raise_if_problems(problems, InputError, "invalid training record")


@dataclass(frozen=True, eq=False)
class ModelMetadata:
    """Everything the runtime needs to use an exported backbone."""

    preprocessing: Preprocessing
    embedding_dim: int  # D: length of one embedding
    adaptation: Adaptation  # the inner loop the model deploys (the training one, or calibrated at export)
    learned_head: LearnedHead
    training: TrainingInfo
    backbone_sha256: str  # hash of the exported graph and weights; binds enrollment states to it
    anil_edge_version: str  # version of anil-edge that exported the model
    extra: Mapping[str, Any] = field(default_factory=dict)  # free-form provenance (precision, opset, ...)
    open_set: OpenSetCalibration | None = None  # rejection thresholds calibrated at export (None: not calibrated)
    head_calibration: HeadCalibration | None = None  # how the export chose ``adaptation`` (None: as trained)
    whitening: WhiteningCalibration | None = None  # whether and why the graph ends with within-class whitening

    def __post_init__(self) -> None:
        """What spans the fields (each record checked its own values when it was built)."""
        problems: list[str] = []
        h, dim = self.learned_head, self.embedding_dim
        if dim < 1:
            problems.append(f"embedding_dim must be >= 1, found {dim}")
        if h.weight.ndim != 2 or h.weight.shape[1] != dim or h.bias.shape != h.weight.shape[:1]:
            problems.append(f"learned_head weight/bias must be (ways, {dim}) and (ways,), found {h.weight.shape} and "
                            f"{h.bias.shape}")
        if len(self.backbone_sha256) != 64:
            problems.append(f"backbone_sha256 must be 64 hex digits, found {self.backbone_sha256!r}")
        problems += self.adaptation_problems(self.adaptation)
        raise_if_problems(problems, InputError, "invalid model metadata")

    def adaptation_problems(self, adaptation: Adaptation) -> list[str]:
        """Why ``adaptation`` cannot run on this model's embeddings (empty when it can): the learned
        head was trained on the embedding before the export's whitening."""
        if self.whitening is not None and self.whitening.pays and adaptation.head_init == "learned":
            return ["head_init 'learned' cannot run on this model: its embeddings end with the export's "
                    "within-class whitening, and its learned head was trained before it; use 'prototype' or 'zeros'"]
        return []
