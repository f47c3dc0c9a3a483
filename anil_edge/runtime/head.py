"""ANIL's inner loop in numpy: closed-form gradient steps on a linear softmax head.

ANIL (Raghu et al., 2019, "Rapid Learning or Feature Reuse? Towards Understanding the
Effectiveness of MAML") adapts only the final linear layer to a new task; the backbone is
reused as is. For cached embeddings ``E`` (N, D), integer labels ``y`` (N,) and a head
``W`` (C, D), ``b`` (C,), the mean softmax cross-entropy has the closed-form gradient::

    Z  = E Wᵀ + b                           logits, (N, C)
    G  = (softmax(Z) − onehot(y)) / N       (N, C)
    dW = Gᵀ E                               (C, D)
    db = Σᵢ Gᵢ                              (C,)

so a device needs no autograd: ``steps`` SGD steps ``W ← W − lr·(dW + λ(W − W₀))``, likewise
``b``, where ``λ`` (``decay``) pulls the head toward its start ``(W₀, b₀)`` (0: plain SGD).

Every function takes one task or a batch of T tasks with a leading axis:
``E`` (T, N, D), ``y`` (T, N), ``W`` (T, C, D) or (C, D) shared by all tasks, ``b`` (T, C) or (C,).
All math is float32 and numerically stable (log-sum-exp).
"""

from __future__ import annotations

import numpy as np

from ..errors import InputError, raise_if_problems
from .adaptation import decay_problems, lr_problems, steps_problems
from .validation import as_float32, check_head, check_labels

__all__ = [
    "logits",
    "softmax",
    "log_softmax",
    "cross_entropy",
    "gradients",
    "adapt",
    "predict_proba",
    "accuracy",
]


def logits(E: np.ndarray, W: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Head logits ``E Wᵀ + b``: (N, C), or (T, N, C) for a batch of tasks."""
    E, W, b = check_head(E, W, b)
    return _logits(E, W, b)


def softmax(Z: np.ndarray) -> np.ndarray:
    """Softmax over the last axis, stable for any finite logits: (…, C) with C >= 1."""
    return _softmax(_check_logits(Z))


def log_softmax(Z: np.ndarray) -> np.ndarray:
    """Log-softmax over the last axis via log-sum-exp: (…, C) with C >= 1."""
    return _log_softmax(_check_logits(Z))


def cross_entropy(E: np.ndarray, y: np.ndarray, W: np.ndarray, b: np.ndarray) -> np.ndarray | np.float32:
    """Mean softmax cross-entropy of the head on labelled embeddings: a scalar, or (T,)."""
    E, W, b = check_head(E, W, b)
    y = check_labels(y, E, W.shape[-2])
    logp = _log_softmax(_logits(E, W, b))
    picked = np.take_along_axis(logp, y[..., None].astype(np.intp), axis=-1)[..., 0]
    return -picked.mean(axis=-1)


def gradients(E: np.ndarray, y: np.ndarray, W: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Closed-form ``(dW, db)`` of :func:`cross_entropy`: (C, D) and (C,), or (T, C, D) and (T, C)."""
    E, W, b = check_head(E, W, b)
    y = check_labels(y, E, W.shape[-2])
    inv_n = np.float32(1.0 / E.shape[-2])
    G = _scaled_residual_t(_logits_t(E, W, b), _onehot_t(y, W.shape[-2], inv_n), inv_n)
    return G @ E, G.sum(axis=-1)


def adapt(
    E: np.ndarray, y: np.ndarray, W: np.ndarray, b: np.ndarray, *, lr: float, steps: int, decay: float = 0.0
) -> tuple[np.ndarray, np.ndarray]:
    """Run ``steps`` SGD steps of the head on ``(E, y)``; return the new ``(W, b)``.

    Equal to ``steps`` calls of ``W -= lr * (dW + decay * (W - W0)); b -= lr * (db + decay * (b - b0))``
    with :func:`gradients`: the mean cross-entropy plus ``decay/2 · ‖θ − θ₀‖²``. When the
    tasks are small (N below about 2·C·steps) the steps run on the N×N Gram matrix ``E Eᵀ``
    instead: logits move by ``−lr·(E Eᵀ G + db)`` per step and ``W`` is formed once at the
    end, which needs far fewer multiply-adds than ``steps`` products with the D-wide W.

    Returns:
        ``W`` (C, D) and ``b`` (C,), or (T, C, D) and (T, C); the inputs are not modified.
    """
    E, W, b = check_head(E, W, b)
    n_classes = W.shape[-2]
    y = check_labels(y, E, n_classes)
    problems = lr_problems(lr, "lr") + steps_problems(steps, "steps")
    raise_if_problems(problems + ([] if problems else decay_problems(decay, lr)), InputError,
                      "invalid adaptation settings")
    return adapt_kernel(E, y, W, b, float(lr), int(steps), float(decay))


def adapt_kernel(E: np.ndarray, y: np.ndarray, W: np.ndarray, b: np.ndarray, lr: float,
                 steps: int, decay: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """:func:`adapt` on trusted inputs: float32 arrays of matching shapes, labels in range, valid
    settings (what the classifier and the episode code hand it, checked where they came in)."""
    if steps == 0:
        batch = E.shape[:-2]
        return np.broadcast_to(W, batch + W.shape[-2:]).copy(), np.broadcast_to(b, batch + b.shape[-1:]).copy()
    kernel = _adapt_gram if _gram_is_cheaper(E.shape[-2], E.shape[-1], W.shape[-2], steps) else _adapt_direct
    return kernel(E, y, W, b, np.float32(lr), steps, np.float32(decay))


def predict_proba(E: np.ndarray, W: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Class probabilities of the head: (N, C), or (T, N, C)."""
    return probabilities_kernel(*check_head(E, W, b))


def probabilities_kernel(E: np.ndarray, W: np.ndarray, b: np.ndarray) -> np.ndarray:
    """:func:`predict_proba` on trusted float32 inputs of matching shapes."""
    Z = _logits(E, W, b)
    if not np.isfinite(Z).all():
        raise InputError("the head's logits overflow float32 (embeddings or head weights of magnitude ~1e19 or more); "
                         "expected embeddings from the model's own backbone")
    return _softmax(Z)


def accuracy(E: np.ndarray, y: np.ndarray, W: np.ndarray, b: np.ndarray) -> np.ndarray | np.float32:
    """Fraction of ``y`` the head predicts (argmax of the logits): a scalar, or (T,)."""
    E, W, b = check_head(E, W, b)
    y = check_labels(y, E, W.shape[-2])
    return (np.argmax(_logits(E, W, b), axis=-1) == y).mean(axis=-1, dtype=np.float32)


# -- unchecked kernels (inputs already validated, float32) ------------------------------------


def _softmax(Z: np.ndarray) -> np.ndarray:
    P = Z - np.max(Z, axis=-1, keepdims=True)
    np.exp(P, out=P)
    P /= P.sum(axis=-1, keepdims=True)
    return P


def _log_softmax(Z: np.ndarray) -> np.ndarray:
    shifted = Z - np.max(Z, axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def _check_logits(Z) -> np.ndarray:
    Z = as_float32("logits", Z, (1, 2, 3))
    if Z.shape[-1] == 0:
        raise InputError(f"logits must have at least one class (last axis), found shape {Z.shape}")
    return Z


def _logits(E: np.ndarray, W: np.ndarray, b: np.ndarray) -> np.ndarray:
    return E @ np.swapaxes(W, -1, -2) + b[..., None, :]


# The adaptation kernels keep logits transposed, (…, C, N): the softmax then reduces over
# axis -2 with N contiguous, several times faster than over a short last axis. The learning
# rate and the 1/N of the mean are folded into the precomputed operands.


def _onehot_t(y: np.ndarray, n_classes: int, scale: np.float32) -> np.ndarray:
    """``scale · onehot(y)ᵀ``: (…, C, N) float32."""
    hits = y[..., None, :] == np.arange(n_classes)[:, None]
    return hits.astype(np.float32) * scale


def _product_t(E: np.ndarray, W: np.ndarray) -> np.ndarray:
    """``W Eᵀ``: (…, C, N), C-contiguous.

    Computed as ``(E Wᵀ)ᵀ``: BLAS runs the (N, D)·(D, C) product about twice as fast as
    (C, D)·(D, N) for these skinny shapes.
    """
    return np.ascontiguousarray(np.swapaxes(E @ np.swapaxes(W, -1, -2), -1, -2))


def _logits_t(E: np.ndarray, W: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Transposed logits ``W Eᵀ + b``: (…, C, N)."""
    Z = _product_t(E, W)
    Z += b[..., :, None]
    return Z


def _scaled_residual_t(Z: np.ndarray, Y: np.ndarray, scale: np.float32) -> np.ndarray:
    """In place: transposed logits Z (…, C, N) become ``scale·softmax(Z) − Y`` over the classes."""
    Z -= Z.max(axis=-2, keepdims=True)
    np.exp(Z, out=Z)
    Z *= scale / Z.sum(axis=-2, keepdims=True)
    Z -= Y
    return Z


def _adapt_direct(E, y, W, b, lr, steps, decay):
    """``steps`` steps on the augmented head [W | b] against [E | 1]."""
    n, batch = E.shape[-2], E.shape[:-2]
    E1 = np.concatenate([E, np.ones(batch + (n, 1), np.float32)], axis=-1)  # (…, N, D+1)
    W1 = np.concatenate([np.broadcast_to(W, batch + W.shape[-2:]), np.broadcast_to(b, batch + b.shape[-1:])[..., None]], -1)
    start = W1.copy() if decay else None
    lr_Y = _onehot_t(y, W.shape[-2], lr / np.float32(n))
    lr_n = lr / np.float32(n)
    for _ in range(steps):
        step = _scaled_residual_t(_product_t(E1, W1), lr_Y, lr_n) @ E1  # lr·G (…, C, N) times [E | 1]
        if start is not None:
            step += (lr * decay) * (W1 - start)
        W1 -= step
    return W1[..., :-1], W1[..., -1]


def _adapt_gram(E, y, W, b, lr, steps, decay):
    """Steps on the logits through ``lr·(E Eᵀ + 1)``; W and b are formed once at the end.

    The head stays ``θ₀ − lr·A·[E | 1]`` with ``A ← (1 − lr·decay)·A + G`` per step, so the
    logits are ``Z₀ − A·lr(E Eᵀ + 1)``."""
    n = E.shape[-2]
    K = E @ np.swapaxes(E, -1, -2)  # (…, N, N), symmetric
    K += np.float32(1.0)  # the bias step moves every logit of a class by the same amount
    K *= lr
    Z0 = _logits_t(E, W, b)
    Z = Z0.copy()
    Y = _onehot_t(y, W.shape[-2], np.float32(1.0 / n))
    inv_n = np.float32(1.0 / n)
    keep = np.float32(1.0) - lr * decay
    A = np.zeros(Z.shape, np.float32)
    for _ in range(steps):
        G = _scaled_residual_t(Z.copy(), Y, inv_n)
        if decay:
            A *= keep
        A += G
        Z = Z0 - A @ K if decay else Z - G @ K
    A *= lr
    return W - A @ E, b - A.sum(axis=-1)


def _gram_is_cheaper(n: int, d: int, c: int, steps: int) -> bool:
    """Multiply-add counts: direct ``2·steps·N·C·D`` vs Gram ``N²·D + 2·N·C·D + steps·N²·C``."""
    direct = 2 * steps * n * c * d
    gram = n * n * d + 2 * n * c * d + steps * n * n * c
    return gram < direct
