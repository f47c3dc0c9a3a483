"""The device runtime: numpy + onnxruntime only (no torch, no learn2learn).

- :class:`Backbone` runs the exported ONNX backbone, configured by its own metadata;
- :class:`Adaptation` is ANIL's inner loop (head rule, learning rate, steps), the same at every stage;
- :mod:`.head` is that inner loop as closed-form numpy gradient steps on the linear head;
- :mod:`.episodes` is the whole test-time episode (class means → head → steps → probabilities);
- :class:`FewShotClassifier` enrolls classes, adapts the head, predicts, saves its state.
"""

from ..errors import AnilEdgeError, InputError, ModelError, NotEnrolledError, StateError, UnreadableImagesError
from . import episodes, head
from .adaptation import HEAD_INITS, Adaptation
from .backbone import Backbone
from .classifier import FewShotClassifier
from .decision import Decision, Prediction
from .labels import ImageInput, Label
from .metadata import DataProvenance, LearnedHead, ModelMetadata, Preprocessing, TrainingInfo
from .open_set import OpenSetCalibration
from .state import EnrollmentState

__all__ = [
    "HEAD_INITS",
    "Adaptation",
    "AnilEdgeError",
    "Backbone",
    "DataProvenance",
    "Decision",
    "EnrollmentState",
    "FewShotClassifier",
    "ImageInput",
    "InputError",
    "Label",
    "LearnedHead",
    "ModelError",
    "ModelMetadata",
    "NotEnrolledError",
    "OpenSetCalibration",
    "Prediction",
    "Preprocessing",
    "StateError",
    "TrainingInfo",
    "UnreadableImagesError",
    "episodes",
    "head",
]
