"""On-device few-shot enrollment: cache support embeddings per class, adapt the head, classify.

This is ANIL's test-time procedure (Raghu et al., 2019): the backbone is frozen, each class's
support images are embedded once and cached, and a fresh linear head is adapted to the
enrolled classes by closed-form SGD steps (:func:`anil_edge.runtime.head.adapt`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from ..errors import InputError, NotEnrolledError
from . import head
from .backbone import Backbone
from .head_init import initial_head
from .labels import Label, check_label
from .metadata import HEAD_INIT_RULES
from .validation import as_float32


@dataclass(frozen=True)
class AdaptationSettings:
    """How the head is adapted and read out; defaults come from the model's metadata."""

    lr: float  # inner-loop SGD learning rate (the model's fast_lr)
    steps: int  # inner-loop SGD steps (the model's adaptation_steps)
    head_init: str  # starting-head rule: "zeros", "mean" or "prototype"
    threshold: float = 0.0  # below this top probability a prediction is "unknown" (label None)

    def __post_init__(self) -> None:
        problems = []
        if not (np.isfinite(self.lr) and self.lr >= 0):
            problems.append(f"lr must be a finite number >= 0, found {self.lr!r}")
        if isinstance(self.steps, bool) or not isinstance(self.steps, int) or self.steps < 0:
            problems.append(f"steps must be an integer >= 0, found {self.steps!r}")
        if self.head_init not in HEAD_INIT_RULES:
            problems.append(f"head_init must be one of {HEAD_INIT_RULES}, found {self.head_init!r}")
        if not 0.0 <= self.threshold <= 1.0:
            problems.append(f"threshold must lie in [0, 1], found {self.threshold!r}")
        if problems:
            raise InputError("invalid adaptation settings: " + "; ".join(problems))


@dataclass(frozen=True)
class Prediction:
    """One image's prediction."""

    label: Label | None  # the predicted class, or None ("unknown") when probability < threshold
    best_label: Label  # the most probable enrolled class, even when the answer is "unknown"
    probability: float  # probability of best_label among the enrolled classes


class FewShotClassifier:
    """Enroll classes from a few labelled images and classify new images, with numpy only.

    Example::

        clf = FewShotClassifier(Backbone("model.onnx"), threshold=0.5)
        clf.enroll("alice", ["alice1.png", "alice2.png"])
        clf.enroll("bob", ["bob1.png"])
        clf.predict(["who.png"])[0].label      # "alice", "bob" or None (unknown)
        clf.save("faces.state.npz")
    """

    def __init__(
        self,
        backbone: Backbone,
        *,
        threshold: float = 0.0,
        lr: float | None = None,
        steps: int | None = None,
        head_init: str | None = None,
    ) -> None:
        trained = backbone.metadata.head
        self.backbone = backbone
        self.settings = AdaptationSettings(
            lr=trained.lr if lr is None else float(lr),
            steps=trained.steps if steps is None else steps,
            head_init=trained.init if head_init is None else head_init,
            threshold=float(threshold),
        )
        self._support: dict[Label, np.ndarray] = {}
        self._head: tuple[np.ndarray, np.ndarray] | None = None

    # -- enrollment -------------------------------------------------------------------------

    @property
    def labels(self) -> list[Label]:
        """Enrolled labels, in enrollment order (the columns of :meth:`predict_proba`)."""
        return list(self._support)

    def support_counts(self) -> dict[Label, int]:
        """Number of cached support examples per enrolled label."""
        return {label: len(e) for label, e in self._support.items()}

    def support_set(self) -> tuple[np.ndarray, np.ndarray]:
        """Every cached support embedding (M, D) float32 and its class index into :attr:`labels` (M,) int32."""
        D = self.backbone.embedding_dim
        embeddings = np.concatenate(list(self._support.values())) if self._support else np.zeros((0, D), np.float32)
        counts = [len(e) for e in self._support.values()]
        return embeddings, np.repeat(np.arange(len(counts), dtype=np.int32), counts)

    def enroll(self, label: Label, images: Any) -> int:
        """Embed ``images`` and add them to class ``label`` (created if new); returns how many.

        Earlier classes and examples are not re-embedded: their embeddings are cached.
        """
        label = check_label(label, self._support)
        return self.enroll_embeddings(label, self.backbone.embed(images))

    def enroll_embeddings(self, label: Label, embeddings: Any) -> int:
        """Add precomputed embeddings (n, D) to class ``label``; returns n."""
        label = check_label(label, self._support)
        E = as_float32(f"embeddings for class {label!r}", embeddings, (1, 2)).reshape(-1, self._dim_of(embeddings))
        if E.shape[0] == 0:
            raise InputError(f"class {label!r}: the support set is empty; expected at least one example")
        self._support[label] = np.concatenate([self._support[label], E]) if label in self._support else E
        self._head = None
        return E.shape[0]

    def remove(self, label: Label) -> None:
        """Forget class ``label`` and its cached examples."""
        if label not in self._support:
            raise InputError(f"cannot remove {label!r}: not enrolled; enrolled labels are {self.labels}")
        del self._support[label]
        self._head = None

    def configure(self, **changes: Any) -> None:
        """Change adaptation settings (``lr``, ``steps``, ``head_init``, ``threshold``)."""
        unknown = set(changes) - {"lr", "steps", "head_init", "threshold"}
        if unknown:
            raise InputError(f"unknown settings {sorted(unknown)}; expected lr, steps, head_init or threshold")
        self.settings = replace(self.settings, **changes)
        self._head = None

    # -- adaptation and prediction ----------------------------------------------------------

    def fit(self) -> tuple[np.ndarray, np.ndarray]:
        """The head adapted to the enrolled classes: ``W`` (C, D), ``b`` (C,); cached until enrollment changes."""
        if not self._support:
            raise NotEnrolledError("no class is enrolled yet: enroll at least one class before predicting")
        if self._head is None:
            E, y = self.support_set()
            prototypes = np.stack([e.mean(axis=0) for e in self._support.values()])
            s = self.settings
            W0, b0 = initial_head(s.head_init, self.backbone.metadata.head, prototypes)
            self._head = head.adapt(E, y, W0, b0, lr=s.lr, steps=s.steps)
        return self._head

    def predict_proba(self, images: Any) -> np.ndarray:
        """Probabilities over :attr:`labels` for each image: (N, C)."""
        return self.predict_proba_embeddings(self.backbone.embed(images))

    def predict_proba_embeddings(self, embeddings: Any) -> np.ndarray:
        """Probabilities over :attr:`labels` for precomputed embeddings (N, D): (N, C)."""
        W, b = self.fit()
        return head.predict_proba(as_float32("embeddings", embeddings, (2,)), W, b)

    def predict(self, images: Any) -> list[Prediction]:
        """Label, probability and "unknown" (label None) for each image."""
        return self.decide(self.predict_proba(images))

    def decide(self, probabilities: np.ndarray) -> list[Prediction]:
        """Predictions from probabilities (N, C) over :attr:`labels`, applying the threshold."""
        labels, threshold = self.labels, self.settings.threshold
        best = np.argmax(probabilities, axis=1)
        out = []
        for row, k in zip(probabilities, best):
            p = float(row[k])
            out.append(Prediction(label=labels[k] if p >= threshold else None, best_label=labels[k], probability=p))
        return out

    # -- persistence ------------------------------------------------------------------------

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the whole enrollment state to one file, atomically (see :mod:`.state`)."""
        from .state import save_state

        save_state(path, self)

    @classmethod
    def load(cls, path: str | os.PathLike[str], backbone: Backbone) -> "FewShotClassifier":
        """Read a state written by :meth:`save`; it must belong to ``backbone``."""
        from .state import load_state

        return load_state(path, backbone, cls)

    def _dim_of(self, embeddings: Any) -> int:
        D = self.backbone.embedding_dim
        shape = np.shape(embeddings)
        if shape[-1:] != (D,):
            raise InputError(f"embeddings must be (n, {D}) for this backbone, found shape {shape}")
        return D
