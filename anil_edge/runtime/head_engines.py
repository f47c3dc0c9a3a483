"""The two engines a :class:`~anil_edge.runtime.FewShotClassifier` adapts and classifies with,
behind one interface (easyfsl's ``process_support_set`` then ``forward``):

- :class:`NumpyHead`, the reference: ANIL's closed-form head steps (:mod:`.episodes`);
- :class:`OnnxHead`: the exported head graphs (:mod:`.head_sessions`), what apps in other
  languages run; their adaptation settings are baked in, so it accepts no others.

``adapt(E, y, n_classes, adaptation)`` gives ``W`` (C, D), ``b`` (C,) and the class means (C, D)
for support embeddings (N, D) and labels (N,); ``classify(Q, W, b, means)`` gives the
probabilities (Q, C) and open-set scores (Q,).
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from . import head
from .adaptation import Adaptation
from .backbone import Backbone
from .episodes import class_means, fit_head
from .head_sessions import HeadGraphs
from .metadata import LearnedHead
from .open_set import open_set_scores

ENGINES = ("numpy", "onnx")


class Engine(Protocol):
    def problems(self, adaptation: Adaptation) -> list[str]:
        """Why this engine cannot run ``adaptation`` (empty: it can)."""

    def adapt(self, E: np.ndarray, y: np.ndarray, n_classes: int,
              adaptation: Adaptation) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The adapted head and class means."""

    def classify(self, Q: np.ndarray, W: np.ndarray, b: np.ndarray, means: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Probabilities and open-set scores."""


class NumpyHead:
    """numpy only: :func:`.episodes.fit_head`, :func:`.head.predict_proba`, :func:`.open_set.open_set_scores`."""

    def __init__(self, learned_head: LearnedHead) -> None:
        self.learned_head = learned_head

    def problems(self, adaptation: Adaptation) -> list[str]:
        return []

    def adapt(self, E, y, n_classes, adaptation):
        W, b = fit_head(E, y, n_classes, adaptation, self.learned_head)
        return W, b, class_means(E, y, n_classes)

    def classify(self, Q, W, b, means):
        return head.probabilities_kernel(Q, W, b), open_set_scores(Q, means)


class OnnxHead:
    """The head graphs exported beside the backbone, checked against its ``model.json``."""

    def __init__(self, backbone: Backbone) -> None:
        self.graphs = HeadGraphs(backbone.path, backbone.file_sha256)
        self.baked = backbone.metadata.adaptation

    def problems(self, adaptation: Adaptation) -> list[str]:
        if adaptation == self.baked:
            return []
        return [f"engine='onnx' runs the adaptation baked into the exported head graph ({self.baked}); this "
                f"classifier is set to {adaptation}: use engine='numpy' for other settings"]

    def adapt(self, E, y, n_classes, adaptation):
        return self.graphs.adapt(E, y)

    def classify(self, Q, W, b, means):
        return self.graphs.classify(Q, W, b, means)


def make_engine(name: str, backbone: Backbone) -> Engine:
    """The engine ``name`` (one of :data:`ENGINES`) for ``backbone``."""
    return OnnxHead(backbone) if name == "onnx" else NumpyHead(backbone.metadata.learned_head)
