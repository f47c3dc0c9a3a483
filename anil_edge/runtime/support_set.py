"""The classifier's memory: each enrolled class's cached support embeddings, in enrollment order.

Not thread-safe on its own; :class:`~anil_edge.runtime.classifier.FewShotClassifier` guards it
with its lock.
"""

from __future__ import annotations

import numpy as np

from ..errors import InputError
from .labels import Label, normalised

DUPLICATE_ATOL = 1e-5  # embeddings this close (relative to their scale) are the same example


class SupportSet:
    """Embeddings (n, D) per label; labels are ``str`` or ``int``, never mixed."""

    def __init__(self, dim: int) -> None:
        self.dim = dim
        self._by_label: dict[Label, np.ndarray] = {}

    @property
    def labels(self) -> list[Label]:
        return list(self._by_label)

    def counts(self) -> dict[Label, int]:
        return {label: len(e) for label, e in self._by_label.items()}

    def __len__(self) -> int:
        return len(self._by_label)

    def __contains__(self, label: object) -> bool:
        return normalised(label) in self._by_label

    def add(self, label: Label, E: np.ndarray, *, deduplicate: bool = False) -> int:
        """Append float32 embeddings (n, D) to ``label``'s class; returns how many were added.
        Trusted inputs: a label checked by :func:`.labels.check_label` against :attr:`labels`."""
        old = self._by_label.get(label)
        if deduplicate:
            E = new_rows(E, old)
            if E.shape[0] == 0:
                return 0
        self._by_label[label] = E if old is None else np.concatenate([old, E])
        return E.shape[0]

    def remove(self, label: Label) -> None:
        label = normalised(label)
        if label not in self._by_label:
            raise InputError(f"cannot remove {label!r}: not enrolled; enrolled labels are {self.labels}")
        del self._by_label[label]

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """Every embedding (M, D) float32 and its class index into :attr:`labels` (M,) int32."""
        parts = list(self._by_label.values())
        embeddings = np.concatenate(parts) if parts else np.zeros((0, self.dim), np.float32)
        return embeddings, np.repeat(np.arange(len(parts), dtype=np.int32), [len(e) for e in parts])


def new_rows(E: np.ndarray, old: np.ndarray | None) -> np.ndarray:
    """The rows of ``E`` (n, D) that are not (within DUPLICATE_ATOL) in ``old`` nor earlier in ``E``."""
    keep: list[np.ndarray] = []
    seen = [] if old is None else list(old)
    for row in E:
        scale = 1.0 + float(np.abs(row).max())
        if not any(np.abs(row - other).max() <= DUPLICATE_ATOL * scale for other in seen):
            keep.append(row)
            seen.append(row)
    return np.stack(keep) if keep else E[:0]
