"""End-to-end parity: the exported model + the runtime's numpy head steps vs the PyTorch model.

Both score the same meta-test tasks: PyTorch embeds every image (eval mode) and adapts heads
with the training code's torch steps; the device path embeds with onnxruntime through
:class:`~anil_edge.runtime.backbone.Backbone` and adapts with :mod:`anil_edge.runtime.head`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from ..runtime import head as np_head
from ..runtime.backbone import Backbone
from ..runtime.head_init import initial_head
from ..runtime.metadata import HeadSettings


@dataclass(frozen=True)
class ParityReport:
    torch_accuracy: float  # mean per-task accuracy, PyTorch
    deployed_accuracy: float  # mean per-task accuracy, ONNX + numpy head
    identical: float  # fraction of query predictions that agree
    tasks: int

    def table_row(self, name: str) -> str:
        return (f"| {name} | {100 * self.torch_accuracy:.2f} | {100 * self.deployed_accuracy:.2f} | "
                f"{100 * (self.deployed_accuracy - self.torch_accuracy):+.2f} | {100 * self.identical:.2f} |")


class DeployedImages:
    """A fixed image set embedded once through the device runtime, to score many task sets."""

    def __init__(self, model_path: str | os.PathLike[str], images: np.ndarray) -> None:
        backbone = Backbone(model_path, device="cpu", batch_size=256)
        self.metadata = backbone.metadata
        self.embeddings = backbone.embed(images)  # (M, D)

    def predict(self, tasks, ways: int) -> np.ndarray:
        """Query predictions (T, Nq) of the runtime on ``tasks`` (indices into the images)."""
        return runtime_task_predictions(self.embeddings, tasks, self.metadata.head, ways)


def deployed_predictions(model_path: str | os.PathLike[str], images: np.ndarray, tasks, ways: int) -> np.ndarray:
    """Query predictions (T, Nq) of the device path on ``tasks`` (indices into uint8 ``images``)."""
    return DeployedImages(model_path, images).predict(tasks, ways)


def runtime_task_predictions(E: np.ndarray, tasks, settings: HeadSettings, ways: int) -> np.ndarray:
    """What the runtime predicts for each task, from cached embeddings (M, D)."""
    Es, Eq = E[tasks.support], E[tasks.query]  # (T, Ns, D), (T, Nq, D)
    Ws, bs = [], []
    for t in range(Es.shape[0]):
        ys = tasks.support_labels[t]
        protos = np.stack([Es[t][ys == c].mean(0) for c in range(ways)])
        W, b = initial_head(settings.init, settings, protos)
        Ws.append(W)
        bs.append(b)
    W, b = np_head.adapt(Es, tasks.support_labels, np.stack(Ws), np.stack(bs), lr=settings.lr, steps=settings.steps)
    return np.argmax(np_head.predict_proba(Eq, W, b), axis=-1)


def compare(torch_preds: np.ndarray, deployed_preds: np.ndarray, labels: np.ndarray) -> ParityReport:
    return ParityReport(
        torch_accuracy=float((torch_preds == labels).mean(-1).mean()),
        deployed_accuracy=float((deployed_preds == labels).mean(-1).mean()),
        identical=float((torch_preds == deployed_preds).mean()),
        tasks=int(labels.shape[0]),
    )
