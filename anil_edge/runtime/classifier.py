"""On-device few-shot enrollment: cache support embeddings per class, adapt the head, classify.

This is ANIL's test-time procedure (Raghu et al., 2019): the backbone is frozen, each class's
support images are embedded once and cached, and a fresh linear head is adapted to the
enrolled classes by closed-form SGD steps — the episode of :mod:`.episodes`, the same code
that every reported accuracy runs.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from ..atomic import refuse_output_over_input
from ..errors import InputError, NotEnrolledError, raise_if_problems
from .adaptation import Adaptation
from .backbone import Backbone
from .decision import Decision, Prediction, apply_threshold
from .folders import class_folders
from .head_engines import ENGINES, make_engine
from .labels import ImageInput, Label, check_label, label_sequence
from .open_set import open_set_scores
from .state import EnrollmentState, Origin, check_belongs, load_consistent, save_guarded
from .support_set import SupportSet
from .validation import as_float32, check_embedding_range

SETTINGS = ("adaptation_lr", "adaptation_steps", "head_init", "head_scale", "head_decay", "threshold", "reject")


class FewShotClassifier:
    """Enroll classes from a few labelled images and classify new images, with numpy only.

    Example::

        clf = FewShotClassifier(Backbone("model.onnx"), reject=0.05)
        clf.enroll("alice", ["alice1.png", "alice2.png"])
        clf.enroll("bob", ["bob1.png"])
        clf.predict(["who.png"])[0].label      # "alice", "bob" or None (unknown)
        clf.save("faces.state.npz")

    Thread-safe: enrollment, removal, settings and the adapted head change together under one
    lock, and each prediction uses one consistent snapshot of labels, head and threshold (the
    images are embedded outside the lock).

    Args:
        backbone: the exported model; its metadata gives the default adaptation settings.
        threshold: below this top probability a prediction is "unknown" (label None).
        reject: open-set rejection at this false-accept rate (e.g. 0.05: about 5% of queries of
            never-enrolled classes are accepted), with the threshold the model was calibrated
            with at export (:mod:`.open_set`); None (default) turns it off.
        adaptation_lr, adaptation_steps, head_init, head_scale, head_decay: override the model's
            :class:`Adaptation` (the head rule its export calibrated, or the one it trained with).
        engine: ``"numpy"`` (the reference) or ``"onnx"``: adapt and classify with the head graphs
            exported beside the model (what apps in other languages run; the model's own
            adaptation settings are baked into them).
    """

    def __init__(self, backbone: Backbone, *, threshold: float = 0.0, reject: float | None = None,
                 adaptation_lr: float | None = None, adaptation_steps: int | None = None,
                 head_init: str | None = None, head_scale: float | None = None, head_decay: float | None = None,
                 engine: str = "numpy") -> None:
        if engine not in ENGINES:
            raise InputError(f"engine must be one of {ENGINES}, found {engine!r}")
        self.backbone = backbone
        self.engine = engine
        self._engine = make_engine(engine, backbone)  # chosen once: numpy steps or the exported head graphs
        self.adaptation = _changed(backbone.metadata.adaptation, adaptation_lr=adaptation_lr,
                                   adaptation_steps=adaptation_steps, head_init=head_init, head_scale=head_scale,
                                   head_decay=head_decay)
        raise_if_problems(self._engine.problems(self.adaptation) + backbone.metadata.adaptation_problems(self.adaptation),
                          InputError, "invalid classifier settings")
        self.decision = Decision(threshold, reject)
        self._reject_threshold = self._rejection_threshold(self.decision.reject)
        self._support = SupportSet(backbone.embedding_dim)
        self._head: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None  # W (C, D), b (C,), class means (C, D)
        self._lock = threading.RLock()
        self._origin: Origin | None = None  # the state file last read or written, and its fingerprint then

    @property
    def threshold(self) -> float:
        """The probability below which the answer is "unknown" (:class:`Decision`)."""
        return self.decision.threshold

    @property
    def reject(self) -> float | None:
        """The open-set false-accept rate, or None (:class:`Decision`)."""
        return self.decision.reject

    # -- enrollment -------------------------------------------------------------------------

    @property
    def labels(self) -> list[Label]:
        """Enrolled labels, in enrollment order (the columns of :meth:`predict_proba`)."""
        with self._lock:
            return self._support.labels

    def support_counts(self) -> dict[Label, int]:
        """Number of cached support examples per enrolled label."""
        with self._lock:
            return self._support.counts()

    def support_set(self) -> tuple[np.ndarray, np.ndarray]:
        """Every cached support embedding (M, D) float32 and its class index into :attr:`labels` (M,) int32."""
        with self._lock:
            return self._support.arrays()

    def enroll(self, label: Label, images: ImageInput, *, deduplicate: bool = False) -> int:
        """Embed ``images`` and add them to class ``label`` (created if new); returns how many
        were added (with ``deduplicate``, examples the class already holds are skipped).

        Earlier classes and examples are not re-embedded: their embeddings are cached.
        """
        check_label(label, self.labels)  # fail before the (slow) embedding
        return self.enroll_embeddings(label, self.backbone.embed(images), deduplicate=deduplicate)

    def enroll_many(self, images: ImageInput, labels: Sequence[Label], *, deduplicate: bool = False) -> dict[Label, int]:
        """Enroll a labelled batch at once (easyfsl's ``process_support_set(images, labels)``):
        ``labels[i]`` is the class of image ``i``. Returns the examples added per class."""
        labels = label_sequence(labels)
        reference = [*self.labels[:1], *labels[:1]]  # every label must have the type of these
        checked = [check_label(label, reference) for label in labels]
        E = self.backbone.embed(images)
        if E.shape[0] != len(checked):
            raise InputError(f"{E.shape[0]} images but {len(checked)} labels; expected one label per image")
        added: dict[Label, int] = {}
        for label in dict.fromkeys(checked):  # first-appearance order; all of one type, checked above
            rows = np.array([lab == label for lab in checked])
            added[label] = self.enroll_embeddings(label, E[rows], deduplicate=deduplicate)
        return added

    def enroll_folder(self, root: str | os.PathLike[str], *, deduplicate: bool = False) -> dict[Label, int]:
        """Enroll every class of an image folder laid out as ``root/<class>/<image>`` (torchvision's
        ``ImageFolder``); the folder names are the labels. Returns the examples added per class."""
        return {label: self.enroll(label, [str(p) for p in paths], deduplicate=deduplicate)
                for label, paths in class_folders(root).items()}

    def enroll_embeddings(self, label: Label, embeddings: Any, *, deduplicate: bool = False) -> int:
        """Add precomputed embeddings (n, D) to class ``label``; returns how many were added."""
        name = f"embeddings for class {label!r}"
        E = check_embedding_range(name, as_float32(name, embeddings, (1, 2)).reshape(-1, self._dim_of(embeddings)))
        if E.shape[0] == 0:
            raise InputError(f"class {label!r}: the support set is empty; expected at least one example")
        with self._lock:  # the label's type against the enrolled ones, under the lock that adds it
            added = self._support.add(check_label(label, self._support.labels), E, deduplicate=deduplicate)
            if added:
                self._head = None
        return added

    def remove(self, label: Label) -> None:
        """Forget class ``label`` and its cached examples."""
        with self._lock:
            self._support.remove(label)
            self._head = None

    def configure(self, **changes: Any) -> None:
        """Change settings: ``adaptation_lr``, ``adaptation_steps``, ``head_init``, ``head_scale``,
        ``head_decay``, ``threshold``, ``reject``; all are checked before any changes (a refused call
        changes nothing)."""
        unknown = sorted(set(changes) - set(SETTINGS))
        if unknown:
            raise InputError(f"unknown settings {unknown}; expected some of {SETTINGS}")
        decision = Decision(changes.pop("threshold", self.threshold), changes.pop("reject", self.reject))
        reject_threshold = self._rejection_threshold(decision.reject)
        with self._lock:
            adaptation = _changed(self.adaptation, **changes)
            raise_if_problems(self._engine.problems(adaptation) + self.backbone.metadata.adaptation_problems(adaptation),
                              InputError, "invalid classifier settings")
            self.adaptation = adaptation
            self.decision, self._reject_threshold = decision, reject_threshold
            self._head = None

    # -- adaptation and prediction ----------------------------------------------------------

    def fit(self) -> tuple[np.ndarray, np.ndarray]:
        """The head adapted to the enrolled classes: ``W`` (C, D), ``b`` (C,); cached until enrollment changes."""
        snap = self._snapshot()
        return snap.W, snap.b

    def predict_proba(self, images: Any) -> np.ndarray:
        """Probabilities over :attr:`labels` for each image: (N, C)."""
        return self.predict_proba_embeddings(self.backbone.embed(images))

    def predict_proba_embeddings(self, embeddings: Any) -> np.ndarray:
        """Probabilities over :attr:`labels` for precomputed embeddings (N, D): (N, C)."""
        E = check_embedding_range("query embeddings", as_float32("query embeddings", embeddings, (2,)))
        return self._probabilities(E, self._snapshot())[0]

    def predict(self, images: ImageInput, *, top_k: int = 1) -> list[Prediction]:
        """Label (None: "unknown"), probability, open-set score and the ``top_k`` most probable
        classes for each image."""
        return self.predict_embeddings(self.backbone.embed(images), top_k=top_k)

    def predict_embeddings(self, embeddings: Any, *, top_k: int = 1) -> list[Prediction]:
        """:meth:`predict` for precomputed embeddings (N, D)."""
        E = check_embedding_range("query embeddings", as_float32("query embeddings", embeddings, (2,)))
        s = self._snapshot()
        P, scores = self._probabilities(E, s)
        return apply_threshold(P, s.labels, s.threshold, scores=scores, reject_threshold=s.reject_threshold,
                               top_k=top_k)

    def _probabilities(self, E: np.ndarray, s: _Snapshot) -> tuple[np.ndarray, np.ndarray]:
        if E.shape[-1] != self.backbone.embedding_dim:
            raise InputError(f"embeddings must be (N, {self.backbone.embedding_dim}), found shape {E.shape}")
        if E.shape[0] == 0:  # both engines: the same answer (the numpy kernels refuse N = 0)
            raise InputError("no query embeddings (N = 0): expected at least one image to classify")
        return self._engine.classify(E, s.W, s.b, s.means)

    def open_set_scores(self, images: ImageInput) -> np.ndarray:
        """Each image's open-set score (N,): cosine similarity to the nearest enrolled class mean."""
        return open_set_scores(self.backbone.embed(images), self._snapshot().means)

    def _snapshot(self) -> _Snapshot:
        """Labels, adapted head, class means and thresholds, consistent with each other."""
        with self._lock:
            if not self._support:
                raise NotEnrolledError("no class is enrolled yet: enroll at least one class before predicting")
            if self._head is None:
                E, y = self.support_set()
                self._head = self._engine.adapt(E, y, len(self._support), self.adaptation)
            return _Snapshot(self._support.labels, *self._head, self.threshold, self._reject_threshold)

    def _rejection_threshold(self, reject: Any) -> float | None:
        if reject is None:
            return None
        calibration = self.backbone.metadata.open_set
        if calibration is None:
            raise InputError(f"reject={reject!r}: {self.backbone.path} has no open-set calibration: the export "
                             "calibrates on the validation classes, and this model's were too few (it needs 6 classes "
                             "with 2 or more images, and 100 images to claim a 5% false-accept rate, 500 for 1%) or it "
                             "predates calibration; export it again with more validation classes (--validation-fraction), "
                             "or reject by probability instead (threshold=, --threshold)")
        return calibration.threshold(reject)

    def apply_threshold(self, probabilities: np.ndarray) -> list[Prediction]:
        """Predictions from probabilities (N, C) over :attr:`labels`: below the threshold, "unknown"
        (the open-set rule needs embeddings: use :meth:`predict_embeddings`)."""
        with self._lock:
            labels, threshold = self.labels, self.threshold
        return apply_threshold(probabilities, labels, threshold)

    # -- persistence ------------------------------------------------------------------------

    def to_state(self) -> EnrollmentState:
        """The whole enrollment as plain data."""
        with self._lock:
            embeddings, class_index = self.support_set()
            return EnrollmentState(self.backbone.sha256, tuple(self.labels), embeddings, class_index,
                                   self.adaptation, self.threshold, self.reject)

    @classmethod
    def from_state(cls, state: EnrollmentState, backbone: Backbone, source: str = "the state") -> FewShotClassifier:
        """A classifier holding ``state``'s enrollment; the state must belong to ``backbone``."""
        check_belongs(state, backbone.sha256, backbone.embedding_dim, backbone.path, source)
        a = state.adaptation
        clf = cls(backbone, threshold=state.threshold, reject=state.reject, adaptation_lr=a.adaptation_lr,
                  adaptation_steps=a.adaptation_steps, head_init=a.head_init, head_scale=a.head_scale,
                  head_decay=a.head_decay)
        for k, label in enumerate(state.labels):
            clf.enroll_embeddings(label, state.embeddings[state.class_index == k])
        return clf

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the whole enrollment state to one file, atomically (see :mod:`.state`).

        Raises :class:`StateError` rather than lose data: when ``path`` is the model file, or
        when this classifier was loaded from (or last saved to) ``path`` and another process
        has written it since — load it again and re-apply the changes.
        """
        target = Path(path)
        refuse_output_over_input(target, [self.backbone.path], what="state file")
        with self._lock:
            self._origin = save_guarded(target, self.to_state(), self._origin)

    @classmethod
    def load(cls, path: str | os.PathLike[str], backbone: Backbone) -> FewShotClassifier:
        """Read a state written by :meth:`save`; it must belong to ``backbone``."""
        clf, origin = load_consistent(path, lambda state: cls.from_state(state, backbone, source=str(path)))
        clf._origin = origin
        return clf

    def __len__(self) -> int:
        """The number of enrolled classes."""
        with self._lock:
            return len(self._support)

    def __contains__(self, label: object) -> bool:
        with self._lock:
            return label in self._support

    def __repr__(self) -> str:
        counts = self.support_counts()
        shown = ", ".join(f"{label!r}: {n}" for label, n in list(counts.items())[:5])
        more = f", … {len(counts) - 5} more" if len(counts) > 5 else ""
        a = self.adaptation
        return (f"FewShotClassifier({len(counts)} classes {{{shown}{more}}}, head_init={a.head_init!r}, "
                f"adaptation_steps={a.adaptation_steps}, adaptation_lr={a.adaptation_lr:g}, "
                f"threshold={self.threshold:g}, backbone={str(self.backbone.path)!r})")

    def _dim_of(self, embeddings: Any) -> int:
        D = self.backbone.embedding_dim
        shape = np.shape(embeddings)
        if shape[-1:] != (D,):
            raise InputError(f"embeddings must be (n, {D}) for this backbone, found shape {shape}")
        return D


class _Snapshot(NamedTuple):
    labels: list[Label]
    W: np.ndarray  # (C, D) adapted head
    b: np.ndarray  # (C,)
    means: np.ndarray  # (C, D) class means, for the open-set score
    threshold: float
    reject_threshold: float | None


def _changed(adaptation: Adaptation, **changes: Any) -> Adaptation:
    """``adaptation`` with the given (non-None) fields replaced, validated by :class:`Adaptation`."""
    return replace(adaptation, **{k: v for k, v in changes.items() if v is not None})
