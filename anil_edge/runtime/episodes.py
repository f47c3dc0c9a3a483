"""ANIL's test-time episode, once, for one task or a batch of tasks (Raghu et al., 2019).

Support embeddings → class means → the starting head (by the :class:`Adaptation`'s rule) →
``adaptation_steps`` closed-form SGD steps (:func:`anil_edge.runtime.head.adapt`) → query
probabilities. :class:`~anil_edge.runtime.classifier.FewShotClassifier`, ``anil-edge evaluate``,
``bench deployed`` and the export's parity check all run this module, so every accuracy figure
measures the code a device runs. The training engines (torch, differentiable) are tested
against it.

Shapes: one task is ``E`` (N, D), ``y`` (N,); a batch of T tasks adds a leading axis,
``E`` (T, N, D), ``y`` (T, N). ``y`` holds class indices in [0, C).
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from ..errors import InputError
from . import head
from .adaptation import Adaptation
from .metadata import LearnedHead


def class_means(E: np.ndarray, y: np.ndarray, n_classes: int) -> np.ndarray:
    """Mean embedding of each class: (C, D), or (T, C, D). Every class needs an example."""
    onehot = (y[..., None, :] == np.arange(n_classes)[:, None]).astype(np.float32)  # (…, C, N)
    counts = onehot.sum(axis=-1, keepdims=True)
    if (counts == 0).any():
        raise InputError(f"every one of the {n_classes} classes needs at least one support example")
    return (onehot @ E) / counts


def initial_head(adaptation: Adaptation, learned: LearnedHead, means: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The head each task starts from, for classes whose mean embeddings are ``means`` (…, C, D).

    Returns ``W`` (…, C, D) and ``b`` (…, C) float32, the rule's head times ``head_scale``. On a
    device ``"learned"`` starts every row from the mean learned row: enrolled classes share no
    order with the training ways.
    """
    rule, scale = adaptation.head_init, np.float32(adaptation.head_scale)
    if rule == "prototype":
        return (2 * scale) * means, -scale * np.einsum("...cd,...cd->...c", means, means)
    if rule == "zeros":
        return np.zeros_like(means), np.zeros(means.shape[:-1], np.float32)
    row = scale * learned.weight.mean(axis=0, dtype=np.float32)
    return (np.broadcast_to(row, means.shape).copy(),
            np.full(means.shape[:-1], scale * learned.bias.mean(dtype=np.float32), np.float32))


def fit_head(E: np.ndarray, y: np.ndarray, n_classes: int, adaptation: Adaptation,
             learned: LearnedHead) -> tuple[np.ndarray, np.ndarray]:
    """The head adapted to the support set ``(E, y)``: ``W`` (…, C, D), ``b`` (…, C).

    Trusted inputs: float32 embeddings and integer labels in [0, n_classes) of matching shapes,
    as the classifier (which checks what users give it) and the task sets (which draw them)
    produce; a valid :class:`Adaptation` (checked when it is made)."""
    W0, b0 = initial_head(adaptation, learned, class_means(E, y, n_classes))
    return head.adapt_kernel(E, y, W0, b0, adaptation.adaptation_lr, adaptation.adaptation_steps,
                             adaptation.head_decay)


def episode_probabilities(E_support: np.ndarray, y_support: np.ndarray, E_query: np.ndarray, n_classes: int,
                          adaptation: Adaptation, learned: LearnedHead) -> np.ndarray:
    """Query probabilities (…, Q, C) after adapting the head on the support set."""
    W, b = fit_head(E_support, y_support, n_classes, adaptation, learned)
    return head.probabilities_kernel(E_query, W, b)


class Episodes(Protocol):
    """T tasks as image indices into cached embeddings (``anil_edge.data.tasks.TaskIndices``)."""

    @property
    def support(self) -> np.ndarray: ...  # (T, N) support image indices

    @property
    def support_labels(self) -> np.ndarray: ...  # (T, N) their classes in [0, n_classes)

    @property
    def query(self) -> np.ndarray: ...  # (T, Q) query image indices


def predict_episodes(embeddings: np.ndarray, tasks: Episodes, n_classes: int, adaptation: Adaptation,
                     learned: LearnedHead, chunk: int = 256) -> np.ndarray:
    """Query predictions (T, Q) of ``tasks`` on cached ``embeddings`` (M, D).

    Args:
        chunk: tasks adapted together (bounds memory; results do not depend on it).
    """
    support, support_labels, query = tasks.support, tasks.support_labels, tasks.query
    out = []
    for i in range(0, support.shape[0], chunk):
        part = slice(i, i + chunk)
        P = episode_probabilities(embeddings[support[part]], support_labels[part], embeddings[query[part]],
                                  n_classes, adaptation, learned)
        out.append(np.argmax(P, axis=-1))
    return np.concatenate(out) if out else np.zeros((0, query.shape[1]), np.int64)
