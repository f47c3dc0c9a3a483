"""Running the exported head graphs (``model.head_adapt.onnx``, ``model.head_classify.onnx``)
with onnxruntime: the same adaptation as :mod:`.episodes`, as every other binding runs it.
``FewShotClassifier(..., engine="onnx")`` uses this; the numpy engine stays the reference."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..errors import ModelError, require

ADAPT_SUFFIX, CLASSIFY_SUFFIX = "head_adapt.onnx", "head_classify.onnx"


def beside(model: str | os.PathLike[str], suffix: str) -> Path:
    """``dir/model.onnx`` → ``dir/model.<suffix>``: where the export puts each companion file."""
    path = Path(model)
    stem = path.name[: -len(".onnx")] if path.name.lower().endswith(".onnx") else path.name
    return path.with_name(f"{stem}.{suffix}")


class HeadGraphs:
    """The two head graphs exported beside a backbone, as onnxruntime sessions."""

    def __init__(self, backbone_path: str | os.PathLike[str]) -> None:
        ort = require("onnxruntime", "cpu")
        self.paths = (beside(backbone_path, ADAPT_SUFFIX), beside(backbone_path, CLASSIFY_SUFFIX))
        missing = [str(p) for p in self.paths if not p.is_file()]
        if missing:
            raise ModelError(f"engine='onnx' needs the head graphs that anil-edge export writes beside the model; "
                             f"not found: {missing}")
        try:
            self._adapt, self._classify = (ort.InferenceSession(str(p), providers=["CPUExecutionProvider"])
                                           for p in self.paths)
        except Exception as exc:  # onnxruntime's own error types
            raise ModelError(f"cannot load the head graphs {[str(p) for p in self.paths]}: {exc}") from None

    def adapt(self, E: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``W`` (C, D), ``b`` (C,) and the class means (C, D) for support embeddings (N, D), labels (N,)."""
        W, b, means = self._adapt.run(None, {"embeddings": E, "labels": y.astype(np.int64)})
        return W, b, means

    def classify(self, Q: np.ndarray, W: np.ndarray, b: np.ndarray, means: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Probabilities (Q, C) and open-set scores (Q,)."""
        _, P, scores = self._classify.run(None, {"queries": Q, "weight": W, "bias": b, "class_means": means})
        return P, scores
