"""Open-set rejection: how far a query is from everything enrolled.

A softmax over the enrolled classes always sums to one, so its top probability cannot say
"none of these". The open-set score here is simple math on embeddings, so that any runtime
(numpy, or an ONNX graph) computes it the same way: the cosine similarity between the query's
embedding and the nearest class mean (prototype),

    score(q) = max_c  <e_q, μ_c> / (‖e_q‖ ‖μ_c‖)        in [-1, 1]

and a query whose score falls below a threshold is "unknown". The threshold is calibrated at
export on validation classes the model never trained on, for target false-accept rates (the
share of queries of never-enrolled classes that would be accepted); the model's metadata
records it, and ``FewShotClassifier(..., reject=0.05)`` uses it. ``anil-edge bench openset``
measures this score against the alternatives (softmax probability, max logit, distance).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..errors import InputError, raise_if_problems

SCORE = "cosine-to-nearest-mean"
TARGET_RATES = (0.01, 0.05)  # false-accept rates the export calibrates a threshold for


@dataclass(frozen=True)
class OpenSetCalibration:
    """Thresholds on the open-set score, measured on validation classes at export."""

    score: str  # which score the thresholds apply to (SCORE)
    thresholds: dict[float, float]  # target false-accept rate -> score threshold
    true_accept: dict[float, float]  # target false-accept rate -> share of known queries accepted there
    episodes: int  # calibration episodes (each: enrolled classes, known and unknown queries)
    ways: int  # classes enrolled per calibration episode
    shots: int  # support images per enrolled class

    def __post_init__(self) -> None:
        problems = [] if self.score == SCORE else [f"score must be {SCORE!r}, found {self.score!r:.40}"]
        for name in ("thresholds", "true_accept"):
            table = getattr(self, name)
            if not all(0 < rate < 1 and math.isfinite(value) for rate, value in table.items()):
                problems.append(f"{name} must map rates in (0, 1) to finite numbers, found {table!r:.60}")
        raise_if_problems(problems, InputError, "invalid open-set calibration")

    def threshold(self, rate: float) -> float:
        """The calibrated threshold for false-accept rate ``rate`` (one of :attr:`thresholds`)."""
        if rate not in self.thresholds:
            raise InputError(f"reject={rate!r}: this model is calibrated for false-accept rates "
                             f"{sorted(self.thresholds)}; pick one of them")
        return self.thresholds[rate]


def cosine_to_means(E: np.ndarray, means: np.ndarray) -> np.ndarray:
    """Cosine similarity of each query (Q, D) to each class mean (C, D): (Q, C)."""
    return (_unit(E) @ np.swapaxes(_unit(means), -1, -2)).astype(np.float32, copy=False)


def _unit(X: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length; the largest entry is divided out first, so that no square
    overflows float32 (embeddings of any finite size have a cosine)."""
    X = X / np.maximum(np.abs(X).max(axis=-1, keepdims=True), np.float32(1e-30))
    return X / np.maximum(np.linalg.norm(X, axis=-1, keepdims=True), np.float32(1e-12))


def open_set_scores(E: np.ndarray, means: np.ndarray) -> np.ndarray:
    """The open-set score of each query: its cosine to the nearest class mean, (Q,) (or (T, Q))."""
    return cosine_to_means(E, means).max(axis=-1)


def calibrate(scores_known: np.ndarray, scores_unknown: np.ndarray, *, episodes: int, ways: int, shots: int,
              rates: tuple[float, ...] = TARGET_RATES) -> OpenSetCalibration:
    """Thresholds at which a share ``rate`` of unknown queries would still be accepted."""
    if scores_known.size == 0 or scores_unknown.size == 0:
        raise InputError("open-set calibration needs queries of enrolled and of never-enrolled classes")
    thresholds, accepted = {}, {}
    for rate in rates:
        t = float(np.quantile(scores_unknown, 1.0 - rate, method="higher"))
        thresholds[rate] = t
        accepted[rate] = float((scores_known >= t).mean())
    return OpenSetCalibration(SCORE, thresholds, accepted, episodes, ways, shots)
