"""End-to-end parity: the exported model through the device runtime vs the PyTorch model.

Both score the same meta-test tasks with the same episode code
(:func:`anil_edge.runtime.episodes.predict_episodes`, which ``FewShotClassifier`` runs); they
differ only in where the embeddings come from: PyTorch (eval mode) or onnxruntime through
:class:`~anil_edge.runtime.backbone.Backbone`. So any difference is the export's.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from ..data.tasks import TaskIndices
from ..runtime.backbone import Backbone
from ..runtime.episodes import predict_episodes


@dataclass(frozen=True)
class ParityReport:
    torch_accuracy: float  # mean per-task accuracy, PyTorch
    deployed_accuracy: float  # mean per-task accuracy, ONNX + runtime
    identical: float  # fraction of query predictions that agree
    tasks: int

    def table_row(self, name: str) -> str:
        return (f"| {name} | {100 * self.torch_accuracy:.2f} | {100 * self.deployed_accuracy:.2f} | "
                f"{100 * (self.deployed_accuracy - self.torch_accuracy):+.2f} | {100 * self.identical:.2f} |")


class DeployedEmbeddings:
    """A fixed image set embedded once through the device runtime, to score many task sets."""

    def __init__(self, model_path: str | os.PathLike[str], images: np.ndarray) -> None:
        backbone = Backbone(model_path, device="cpu", batch_size=256)
        self.metadata = backbone.metadata
        self.embeddings = backbone.embed(images)  # (M, D)

    def predict(self, tasks: TaskIndices, ways: int) -> np.ndarray:
        """Query predictions (T, Nq) of the runtime's episodes on ``tasks`` (indices into the images)."""
        return predict_episodes(self.embeddings, tasks, ways,
                                self.metadata.adaptation, self.metadata.learned_head)


def compare(torch_preds: np.ndarray, deployed_preds: np.ndarray, labels: np.ndarray) -> ParityReport:
    return ParityReport(
        torch_accuracy=float((torch_preds == labels).mean(-1).mean()),
        deployed_accuracy=float((deployed_preds == labels).mean(-1).mean()),
        identical=float((torch_preds == deployed_preds).mean()),
        tasks=int(labels.shape[0]),
    )
