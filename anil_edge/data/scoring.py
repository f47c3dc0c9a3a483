"""Meta-test scores: mean per-task accuracy and its 95% confidence interval (numpy only)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .tasks import TaskIndices


@dataclass(frozen=True, eq=False)
class EvalResult:
    """Accuracy over ``tasks`` tasks; ``ci95`` is the half-width of the 95% interval (1.96·σ/√n)."""

    accuracy: float  # mean per-task query accuracy in [0, 1]
    ci95: float  # 95% confidence half-width
    per_task: np.ndarray  # (tasks,) each task's query accuracy

    @property
    def tasks(self) -> int:
        return int(self.per_task.size)

    def __str__(self) -> str:
        return f"{100 * self.accuracy:.2f} ± {100 * self.ci95:.2f}% ({self.tasks} tasks)"


def summarise(per_task: np.ndarray) -> EvalResult:
    """Mean and 95% interval of per-task accuracies (T,)."""
    n = per_task.size
    ci = 1.96 * per_task.std(ddof=1) / math.sqrt(n) if n > 1 else float("nan")
    return EvalResult(float(per_task.mean()), float(ci), per_task)


def score(predictions: np.ndarray, tasks: TaskIndices) -> EvalResult:
    """The result of query ``predictions`` (T, Q) on ``tasks``."""
    return summarise((predictions == tasks.query_labels).mean(-1).astype(np.float64))
