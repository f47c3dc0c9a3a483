"""From probabilities to answers: the most probable enrolled class, or "unknown".

A softmax over the enrolled classes always sums to one, so a query of a class that was never
enrolled still gets a most probable class; below ``threshold`` top probability the answer is
``None`` ("unknown").
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

    label: Label | None  # the predicted class, or None ("unknown") when probability < threshold
    best_label: Label  # the most probable enrolled class, even when the answer is "unknown"
    probability: float  # probability of best_label among the enrolled classes


def threshold_problems(value: Any, name: str = "threshold") -> list[str]:
    """Why ``value`` is not a probability threshold in [0, 1] (empty when it is)."""
    if isinstance(value, bool) or not isinstance(value, Real):
        return [f"{name} must be a number in [0, 1], found {type(value).__name__} {value!r:.40}"]
    if not (math.isfinite(value) and 0.0 <= float(value) <= 1.0):
        return [f"{name} must lie in [0, 1], found {value!r}"]
    return []


def apply_threshold(probabilities: np.ndarray, labels: Sequence[Label], threshold: float) -> list[Prediction]:
    """Predictions from probabilities (N, C) over ``labels`` (C of them)."""
    P = np.asarray(probabilities)
    problems = []
    if P.ndim != 2 or P.shape[1] != len(labels):
        problems.append(f"probabilities must be (N, {len(labels)}) for the {len(labels)} enrolled classes, "
                        f"found shape {P.shape}")
    elif P.dtype.kind != "f" or not np.isfinite(P).all() or P.min() < 0 or P.max() > 1:
        problems.append("probabilities must be finite numbers in [0, 1]")
    raise_if_problems(problems + threshold_problems(threshold), InputError, "cannot decide")
    best = np.argmax(P, axis=1) if P.shape[0] else np.zeros(0, np.intp)
    out = []
    for row, k in zip(P, best):
        p = float(row[k])
        out.append(Prediction(label=labels[k] if p >= threshold else None, best_label=labels[k], probability=p))
    return out
