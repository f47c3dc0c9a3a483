"""The two inner-loop engines behind ``TrainConfig.engine``: the same ANIL meta-loss.

For each task the head starts from its initial rows, takes ``steps`` SGD steps on the support
loss, and the query loss of the adapted head is averaged over the meta-batch; its gradient flows
through the adaptation (second order), into the backbone and the head (Raghu et al., 2019).

- ``l2l`` — the reference: learn2learn's ``MAML``-wrapped head, ``clone()`` / ``adapt()``, one
  task at a time, each task's images through the backbone in one call (the seed's loop).
- ``fast`` — every image of the meta-batch through the backbone in one call, then all heads
  adapt at once in closed form (:mod:`anil_edge.train.inner_loop`).

With a per-image normalisation (``norm="group"``, or BatchNorm in eval mode) both compute the
same function; with BatchNorm in train mode the statistics are the meta-batch's (``fast``) or
the task's (``l2l``), which is why deployed models are scored per image.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from ..runtime.adaptation import Adaptation
from .batches import TaskBatch
from .inner_loop import adapt_heads, head_logits, initial_heads
from .model import AnilModel

Engine = Callable[[AnilModel, TaskBatch, Adaptation], "tuple[torch.Tensor, torch.Tensor]"]


def fast_meta_loss(model: AnilModel, batch: TaskBatch, inner: Adaptation) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean query loss and accuracy over the meta-batch, all tasks batched."""
    T, Ns = batch.support_labels.shape
    Nq = batch.query_labels.shape[1]
    images = torch.cat([batch.support.flatten(0, 1), batch.query.flatten(0, 1)])
    E = model.forward_features(images, batch.prefixed).to(model.head.weight.dtype)
    Es, Eq = E[: T * Ns].view(T, Ns, -1), E[T * Ns :].view(T, Nq, -1)
    ways = model.head.out_features
    W, b = initial_heads(inner.head_init, model.head.weight, model.head.bias, Es, batch.support_labels, ways,
                         inner.head_scale)
    W, b = adapt_heads(Es, batch.support_labels, W, b, lr=inner.adaptation_lr, steps=inner.adaptation_steps,
                       decay=inner.head_decay)
    logits = head_logits(Eq, W, b)
    loss = F.cross_entropy(logits.flatten(0, 1), batch.query_labels.flatten())
    return loss, _accuracy(logits, batch.query_labels)


def l2l_meta_loss(model: AnilModel, batch: TaskBatch, inner: Adaptation) -> tuple[torch.Tensor, torch.Tensor]:
    """The same, task by task through learn2learn's ``MAML(head).clone().adapt()``."""
    from .l2l_import import learn2learn

    l2l = learn2learn()

    maml = l2l.algorithms.MAML(model.head, lr=inner.adaptation_lr, first_order=False)
    losses, accs = [], []
    for t in range(batch.support_labels.shape[0]):
        ns = batch.support.shape[1]
        E = model.forward_features(torch.cat([batch.support[t], batch.query[t]]), batch.prefixed)
        E = E.to(model.head.weight.dtype)
        Es, Eq = E[:ns], E[ns:]
        learner = maml.clone()
        W0, b0 = _start(learner, inner, Es, batch.support_labels[t])
        for _ in range(inner.adaptation_steps):
            loss = F.cross_entropy(learner(Es), batch.support_labels[t])
            if inner.head_decay:  # the pull toward the start, as a penalty whose gradient it is
                module = learner.module
                loss = loss + inner.head_decay / 2 * ((module.weight - W0).square().sum()
                                                      + (module.bias - b0).square().sum())
            learner.adapt(loss)
        logits = learner(Eq)
        losses.append(F.cross_entropy(logits, batch.query_labels[t]))
        accs.append(_accuracy(logits, batch.query_labels[t]))
    return torch.stack(losses).mean(), torch.stack(accs).mean()


def _start(learner, inner: Adaptation, Es: torch.Tensor, ys: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Put the task's initial head into the cloned learner; return it (the pull's target)."""
    module = learner.module
    W, b = initial_heads(inner.head_init, module.weight, module.bias, Es[None], ys[None], module.out_features,
                         inner.head_scale)
    module._parameters["weight"], module._parameters["bias"] = W[0], b[0]  # as l2l's clone_module does
    return W[0], b[0]


def _accuracy(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    return (logits.argmax(-1) == labels).float().mean().detach()


ENGINES: dict[str, Engine] = {"fast": fast_meta_loss, "l2l": l2l_meta_loss}


class MetaLoss(nn.Module):
    """An engine's meta-loss as one module's forward, so that DistributedDataParallel can wrap it."""

    def __init__(self, model: AnilModel, engine: Engine, inner: Adaptation) -> None:
        super().__init__()
        self.model, self.engine, self.inner = model, engine, inner

    def forward(self, batch: TaskBatch) -> tuple[torch.Tensor, torch.Tensor]:
        return self.engine(self.model, batch, self.inner)


def descend(optimizer: torch.optim.Optimizer, loss: torch.Tensor, before_step: Callable[[], None] | None = None) -> None:
    """One outer-loop update from the meta-loss: clear the gradients, backpropagate, run
    ``before_step`` (e.g. average the gradients over ranks), step."""
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if before_step is not None:
        before_step()
    optimizer.step()
