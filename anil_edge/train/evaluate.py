"""Meta-test evaluation: mean accuracy and 95% confidence interval over held-out tasks.

Deployed (per-image) scoring embeds every image alone — eval mode, so an embedding never depends
on the batch around it, as on a device — then adapts each task's head on the cached support
embeddings. Transductive scoring (``norm="batch"`` only, for comparison with learn2learn's
examples) embeds each task's images together with BatchNorm's batch statistics.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from .batches import BatchMaker
from .data.image_set import ImageSet
from .data.tasks import TaskIndices, TaskSampler, seeded_random
from .engines import InnerLoop
from .inner_loop import adapt_heads, head_logits, initial_heads
from .model import AnilModel


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
    n = per_task.size
    ci = 1.96 * per_task.std(ddof=1) / math.sqrt(n) if n > 1 else float("nan")
    return EvalResult(float(per_task.mean()), float(ci), per_task)


def sample_tasks(data: ImageSet, *, ways: int, shots: int, queries: int, tasks: int, seed: int) -> TaskIndices:
    """The same ``tasks`` tasks for a given seed, without touching the training task stream."""
    with seeded_random(seed):
        return TaskSampler(data, ways=ways, shots=shots, queries=queries, name="evaluation set").sample(tasks)


@torch.no_grad()
def embed_images(model: AnilModel, maker: BatchMaker, batch_size: int = 500) -> torch.Tensor:
    """Per-image (eval-mode) embeddings of every image the maker holds, (M, D) float32."""
    was_training = model.training
    model.eval()
    n = maker.pixels.shape[0]
    out = [model.forward_features(maker.images(np.arange(i, min(i + batch_size, n)))).float()
           for i in range(0, n, batch_size)]
    model.train(was_training)
    return torch.cat(out)


@torch.no_grad()
def predict_tasks(
    model: AnilModel, embeddings: torch.Tensor, tasks: TaskIndices, inner: InnerLoop, ways: int, chunk: int = 200
) -> np.ndarray:
    """Each task's query predictions (T, Nq), after adapting a head on its cached support
    embeddings (M, D). The head starts by the *deployed* rule: a device has no use for the
    learned rows' order, so ``"learned"`` starts from their mean, as the runtime does."""
    rule = "mean" if inner.head_init == "learned" else inner.head_init
    W0, b0 = model.head.weight.float().to(embeddings.device), model.head.bias.float().to(embeddings.device)
    preds = []
    for i in range(0, tasks.support.shape[0], chunk):
        sl = slice(i, i + chunk)
        ys = torch.from_numpy(tasks.support_labels[sl]).to(embeddings.device)
        Es, Eq = embeddings[torch.from_numpy(tasks.support[sl])], embeddings[torch.from_numpy(tasks.query[sl])]
        W, b = initial_heads(rule, W0, b0, Es, ys, ways)
        W, b = adapt_heads(Es, ys, W, b, lr=inner.lr, steps=inner.steps)
        preds.append(head_logits(Eq, W, b).argmax(-1).cpu())
    return torch.cat(preds).numpy()


def score_embedded(
    model: AnilModel, embeddings: torch.Tensor, tasks: TaskIndices, inner: InnerLoop, ways: int
) -> EvalResult:
    """Per-task query accuracy of :func:`predict_tasks`."""
    preds = predict_tasks(model, embeddings, tasks, inner, ways)
    return summarise((preds == tasks.query_labels).mean(-1).astype(np.float64))


def evaluate(
    model: AnilModel, maker: BatchMaker, tasks: TaskIndices, inner: InnerLoop, ways: int
) -> EvalResult:
    """Deployed (per-image) accuracy of ``model`` on ``tasks`` drawn from the maker's images."""
    return score_embedded(model, embed_images(model, maker), tasks, inner, ways)


@torch.no_grad()
def evaluate_transductive(
    model: AnilModel, maker: BatchMaker, tasks: TaskIndices, inner: InnerLoop, ways: int
) -> EvalResult:
    """Accuracy with each task's images embedded together in BatchNorm's train mode (running
    statistics left untouched) — what learn2learn's examples report."""
    saved = {k: v.clone() for k, v in model.state_dict().items()}
    was_training = model.training
    model.train()
    accs = []
    try:
        for t in range(tasks.support.shape[0]):
            one = TaskIndices(*(a[t : t + 1] for a in (tasks.support, tasks.support_labels, tasks.query, tasks.query_labels)))
            idx = np.concatenate([one.support[0], one.query[0]])
            E = model.forward_features(maker.images(idx)).float()
            cached = TaskIndices(np.arange(one.support.size)[None], one.support_labels,
                                 np.arange(one.support.size, idx.size)[None], one.query_labels)
            accs.append(score_embedded(model, E, cached, inner, ways).per_task)
    finally:
        model.load_state_dict(saved)
        model.train(was_training)
    return summarise(np.concatenate(accs))
