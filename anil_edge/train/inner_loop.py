"""ANIL's inner loop in torch, batched over tasks and differentiable (the ``fast`` engine's core).

The same closed-form head steps as the device runtime (:mod:`anil_edge.runtime.head`) —
``G = (softmax(E Wᵀ + b) − onehot(y)) / N``, ``dW = Gᵀ E``, ``db = Σᵢ Gᵢ`` — written with
tensor ops, so that autograd differentiates the outer (query) loss through the adaptation:
the explicit gradient is an exact function of W, b and E, hence its derivative is the
second-order MAML term that learn2learn's ``MAML.adapt`` obtains with ``create_graph=True``
(Raghu et al., 2019; Finn et al., 2017). All T tasks of a meta-batch adapt in one call.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..errors import InputError
from ..runtime.adaptation import HEAD_INITS


def adapt_heads(
    E: torch.Tensor, y: torch.Tensor, W: torch.Tensor, b: torch.Tensor, *, lr: float, steps: int,
    decay: float = 0.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``steps`` SGD steps of the linear head on each task's support set, with the gradient of
    ``decay/2 · ‖θ − θ₀‖²`` (a pull toward the start) added to the cross-entropy's.

    Args:
        E: support embeddings (T, N, D).
        y: support labels (T, N), integers in [0, C).
        W: head weight (C, D), shared start for every task, or (T, C, D).
        b: head bias (C,) or (T, C).

    Returns:
        Adapted ``W`` (T, C, D) and ``b`` (T, C), differentiable w.r.t. E, W and b.
    """
    n_classes, n = W.shape[-2], E.shape[-2]
    Y = F.one_hot(y, n_classes).to(E.dtype)  # (T, N, C)
    W0 = W = W.expand(E.shape[0], *W.shape[-2:])
    b0 = b = b.expand(E.shape[0], b.shape[-1])
    for _ in range(steps):
        G = (torch.softmax(head_logits(E, W, b), dim=-1) - Y) / n  # (T, N, C)
        dW, db = G.transpose(-1, -2) @ E, G.sum(dim=-2)
        if decay:
            dW, db = dW + decay * (W - W0), db + decay * (b - b0)
        W = W - lr * dW
        b = b - lr * db
    return W, b


def head_logits(E: torch.Tensor, W: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Logits (T, N, C) of per-task heads W (T, C, D), b (T, C) on embeddings E (T, N, D)."""
    return E @ W.transpose(-1, -2) + b.unsqueeze(-2)


def initial_heads(
    rule: str, W: torch.Tensor, b: torch.Tensor, E: torch.Tensor, y: torch.Tensor, n_classes: int,
    scale: float = 1.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Each task's starting head, (T, C, D) and (T, C), times ``scale``, by the rules of
    :mod:`anil_edge.runtime.adaptation` (tested against :func:`anil_edge.runtime.episodes.initial_head`).
    ``"learned"`` starts from the meta-learned rows when C = ways (training tasks), and from
    their mean for any other C, as a device does.

    Args:
        W, b: the meta-learned head (ways, D), (ways,).
        E: support embeddings (T, N, D); y: support labels (T, N) in [0, C).
    """
    T, _, D = E.shape
    if rule == "learned" and n_classes == W.shape[0]:
        return scale * W.expand(T, n_classes, D), scale * b.expand(T, n_classes)
    if rule == "learned":
        return scale * W.mean(0).expand(T, n_classes, D), scale * b.mean().expand(T, n_classes)
    if rule == "zeros":  # zeros that stay in the graph, so both engines see the same parameters
        return (W.sum() * 0).expand(T, n_classes, D), (b.sum() * 0).expand(T, n_classes)
    if rule == "prototype":
        P = class_means(E, y, n_classes)
        return (2 * scale) * P, -scale * (P * P).sum(-1)
    raise InputError(f"head_init must be one of {HEAD_INITS}, found {rule!r}")


def class_means(E: torch.Tensor, y: torch.Tensor, n_classes: int) -> torch.Tensor:
    """Mean support embedding per class, (T, C, D), from E (T, N, D) and y (T, N)."""
    Y = F.one_hot(y, n_classes).to(E.dtype)  # (T, N, C)
    return (Y.transpose(-1, -2) @ E) / Y.sum(-2).unsqueeze(-1)
