"""Meta-test evaluation of a PyTorch model: embeddings from torch, episodes from the runtime.

Deployed (per-image) scoring embeds every image alone — eval mode, so an embedding never depends
on the batch around it, as on a device — then runs each task's episode with the runtime's own
code (:func:`anil_edge.runtime.episodes.predict_episodes`) on the cached embeddings, exactly as
``FewShotClassifier`` would. Transductive scoring (``norm="batch"`` only, for comparison with
learn2learn's examples) embeds each task's images together with BatchNorm's batch statistics.
"""

from __future__ import annotations

import numpy as np
import torch

from ..data.scoring import EvalResult, score, summarise
from ..data.tasks import TaskIndices
from ..runtime.adaptation import Adaptation
from ..runtime.episodes import predict_episodes
from .batches import BatchMaker
from .model import AnilModel


@torch.no_grad()
def embed_images(model: AnilModel, maker: BatchMaker, batch_size: int = 500) -> np.ndarray:
    """Per-image (eval-mode) embeddings of every image the maker holds, (M, D) float32."""
    was_training = model.training
    model.eval()
    n = maker.pixels.shape[0]
    out = [model.forward_features(maker.images(np.arange(i, min(i + batch_size, n)))).float()
           for i in range(0, n, batch_size)]
    model.train(was_training)
    return torch.cat(out).cpu().numpy()


def predict_tasks(model: AnilModel, embeddings: np.ndarray, tasks: TaskIndices, adaptation: Adaptation,
                  ways: int) -> np.ndarray:
    """Each task's query predictions (T, Nq) from cached embeddings (M, D): the runtime's episode."""
    return predict_episodes(embeddings, tasks, ways, adaptation,
                            model.learned_head())


def evaluate(model: AnilModel, maker: BatchMaker, tasks: TaskIndices, adaptation: Adaptation,
             ways: int) -> EvalResult:
    """Deployed (per-image) accuracy of ``model`` on ``tasks`` drawn from the maker's images."""
    return score(predict_tasks(model, embed_images(model, maker), tasks, adaptation, ways), tasks)


@torch.no_grad()
def evaluate_transductive(model: AnilModel, maker: BatchMaker, tasks: TaskIndices, adaptation: Adaptation,
                          ways: int) -> EvalResult:
    """Accuracy with each task's images embedded together in BatchNorm's train mode (running
    statistics left untouched) — what learn2learn's examples report."""
    saved = {k: v.clone() for k, v in model.state_dict().items()}
    was_training = model.training
    model.train()
    accs = []
    try:
        for t in range(tasks.support.shape[0]):
            idx = np.concatenate([tasks.support[t], tasks.query[t]])
            E = model.forward_features(maker.images(idx)).float().cpu().numpy()
            ns = tasks.support.shape[1]
            local = TaskIndices(np.arange(ns)[None], tasks.support_labels[t : t + 1],
                                np.arange(ns, idx.size)[None], tasks.query_labels[t : t + 1])
            accs.append(score(predict_tasks(model, E, local, adaptation, ways), local).per_task)
    finally:
        model.load_state_dict(saved)
        model.train(was_training)
    return summarise(np.concatenate(accs))
