"""The device runtime: numpy + onnxruntime only (no torch, no learn2learn).

- :class:`Backbone` runs the exported ONNX backbone, configured by its own metadata;
- :mod:`.head` is ANIL's inner loop as closed-form numpy gradient steps on the linear head;
- :class:`FewShotClassifier` enrolls classes, adapts the head, predicts, saves its state.
"""

from ..errors import AnilEdgeError, InputError, ModelError, NotEnrolledError, StateError
from . import head
from .backbone import Backbone
from .classifier import AdaptationSettings, FewShotClassifier, Prediction
from .metadata import HeadSettings, ModelMetadata, Preprocessing, TrainingInfo

__all__ = [
    "AdaptationSettings",
    "AnilEdgeError",
    "Backbone",
    "FewShotClassifier",
    "HeadSettings",
    "InputError",
    "ModelError",
    "ModelMetadata",
    "NotEnrolledError",
    "Prediction",
    "Preprocessing",
    "StateError",
    "TrainingInfo",
    "head",
]
