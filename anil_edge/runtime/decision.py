"""From probabilities and open-set scores to answers: a class, or "unknown".

A query is "unknown" (label ``None``) when its top probability is below ``threshold`` (the
softmax rule), or when its open-set score — the cosine similarity to the nearest class mean
(:mod:`.open_set`) — is below ``reject_threshold`` (a query far from everything enrolled).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from numbers import Real
from typing import Any

import numpy as np

from ..errors import InputError, raise_if_problems
from .labels import Label


@dataclass(frozen=True)
class Prediction:
    """One image's prediction."""

    label: Label | None  # the predicted class, or None ("unknown"): below the threshold or rejected as open-set
    best_label: Label  # the most probable enrolled class, even when the answer is "unknown"
    probability: float  # probability of best_label among the enrolled classes
    score: float = float("nan")  # open-set score: cosine similarity to the nearest class mean, in [-1, 1]
    top: tuple[tuple[Label, float], ...] = ()  # the top_k (label, probability) pairs, most probable first


@dataclass(frozen=True)
class Decision:
    """When a prediction is "unknown": its top probability below ``threshold``, or, with
    ``reject``, its open-set score below the model's threshold for that false-accept rate (which
    rates a model offers is the model's to say: :meth:`.OpenSetCalibration.threshold`)."""

    threshold: float = 0.0  # softmax probability in [0, 1] below which the answer is "unknown" (0: never)
    reject: float | None = None  # a false-accept rate in (0, 1), e.g. 0.05, or None: no open-set rule

    def __post_init__(self) -> None:
        problems = threshold_problems(self.threshold) + reject_problems(self.reject)
        raise_if_problems(problems, InputError, "invalid decision settings")
        object.__setattr__(self, "threshold", float(self.threshold))
        if self.reject is not None:
            object.__setattr__(self, "reject", float(self.reject))


def reject_problems(value: Any) -> list[str]:
    """Why ``value`` is not None or a false-accept rate in (0, 1) (empty when it is)."""
    if value is None:
        return []
    if isinstance(value, bool) or not isinstance(value, Real) or not (math.isfinite(value) and 0 < float(value) < 1):
        return [f"reject must be None or a false-accept rate in (0, 1), found {value!r:.40}"]
    return []


def threshold_problems(value: Any, name: str = "threshold") -> list[str]:
    """Why ``value`` is not a probability threshold in [0, 1] (empty when it is)."""
    if isinstance(value, bool) or not isinstance(value, Real):
        return [f"{name} must be a number in [0, 1], found {type(value).__name__} {value!r:.40}"]
    if not (math.isfinite(value) and 0.0 <= float(value) <= 1.0):
        return [f"{name} must lie in [0, 1], found {value!r}"]
    return []


def top_k_problems(value: Any) -> list[str]:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        return [f"top_k must be an integer >= 1, found {value!r:.40}"]
    return []


def apply_threshold(probabilities: np.ndarray, labels: Sequence[Label], threshold: float, *,
                    scores: np.ndarray | None = None, reject_threshold: float | None = None,
                    top_k: int = 1) -> list[Prediction]:
    """Predictions from probabilities (N, C) over ``labels`` (C of them) and open-set scores (N,)."""
    P = np.asarray(probabilities)
    problems = []
    if P.ndim != 2 or P.shape[1] != len(labels):
        problems.append(f"probabilities must be (N, {len(labels)}) for the {len(labels)} enrolled classes, "
                        f"found shape {P.shape}")
    elif P.dtype.kind != "f" or not np.isfinite(P).all() or P.min() < 0 or P.max() > 1:
        problems.append("probabilities must be finite numbers in [0, 1]")
    raise_if_problems(problems + threshold_problems(threshold) + top_k_problems(top_k), InputError,
                      "cannot decide")
    S = np.full(P.shape[0], np.nan) if scores is None else np.asarray(scores, dtype=np.float64)
    order = np.argsort(-P, axis=1, kind="stable")[:, :top_k]
    out = []
    for row, ranked, score in zip(P, order, S):
        k = int(ranked[0])
        p = float(row[k])
        known = p >= threshold and (reject_threshold is None or score >= reject_threshold)
        out.append(Prediction(label=labels[k] if known else None, best_label=labels[k], probability=p,
                              score=float(score), top=tuple((labels[int(j)], float(row[j])) for j in ranked)))
    return out
