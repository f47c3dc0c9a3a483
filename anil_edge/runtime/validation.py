"""Checks on arrays handed to the head math: clear errors instead of numpy tracebacks."""

from __future__ import annotations

import numpy as np

from ..errors import InputError, raise_if_problems

# The largest |entry| an embedding may have. An anil-edge backbone's embeddings are ~1 (cosine:
# unit norm); at 1e5 and beyond, lr·|E|² makes the inner loop's float32 steps chaotic, so the
# numpy engine, the ONNX head graphs (and any two devices) part (measured: they agree to float32
# rounding on random enrollments up to 1e4, not at 1e5; tests/export/test_head_graphs.py).
MAX_EMBEDDING_ABS = 1e4


def as_float32(name: str, value, ndims: tuple[int, ...]) -> np.ndarray:
    """``value`` as a float32 array with one of ``ndims`` dimensions and only finite entries."""
    if type(value) is np.ndarray and value.dtype == np.float32 and value.ndim in ndims:  # fast path
        if np.isfinite(value).all():
            return value
    try:
        array = np.asarray(value)
    except (TypeError, ValueError) as exc:
        raise InputError(f"{name} must be an array of numbers, found {type(value).__name__} ({exc})") from None
    if array.dtype.kind not in "fiu" or array.dtype == np.bool_:
        raise InputError(f"{name} must hold numbers, found dtype {array.dtype}")
    if array.ndim not in ndims:
        raise InputError(f"{name} must have {' or '.join(map(str, ndims))} dimensions, found shape {array.shape}")
    array = array.astype(np.float32, copy=False)
    if not np.isfinite(array).all():
        bad = int(np.size(array) - np.count_nonzero(np.isfinite(array)))
        raise InputError(f"{name} must be finite, found {bad} NaN or infinite value(s)")
    return array


def embedding_range_problems(name: str, E: np.ndarray) -> list[str]:
    """A problem when finite float32 ``E`` has an entry beyond ±:data:`MAX_EMBEDDING_ABS`."""
    peak = float(np.abs(E).max()) if E.size else 0.0
    if peak <= MAX_EMBEDDING_ABS:
        return []
    return [f"{name} reach magnitude {peak:.3g}; expected entries within ±{MAX_EMBEDDING_ABS:g} (a backbone's "
            "embeddings are ~1; at this size the head's float32 steps diverge and engines disagree): embed with "
            "the model's own backbone, or scale them down"]


def check_embedding_range(name: str, E: np.ndarray) -> np.ndarray:
    """``E`` unchanged, or :class:`InputError` from :func:`embedding_range_problems`."""
    raise_if_problems(embedding_range_problems(name, E), InputError, "embeddings out of range")
    return E


def check_head(E, W, b) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Validate embeddings (…, N, D) against a head W (…, C, D), b (…, C); return float32 arrays."""
    E = as_float32("embeddings", E, (2, 3))
    W = as_float32("head weight W", W, (2, 3) if E.ndim == 3 else (2,))
    b = as_float32("head bias b", b, (1, 2) if E.ndim == 3 else (1,))
    problems = []
    if E.shape[-2] == 0:
        problems.append("embeddings hold no examples (N = 0)")
    if W.shape[-1] != E.shape[-1]:
        problems.append(f"W is {W.shape} but the embeddings are {E.shape[-1]}-d; expected W of shape (C, {E.shape[-1]})")
    if W.shape[-2] == 0:
        problems.append("the head has no classes (C = 0)")
    if b.shape[-1] != W.shape[-2]:
        problems.append(f"b has {b.shape[-1]} entries but W has {W.shape[-2]} rows (classes)")
    for name, array, core in (("W", W, 2), ("b", b, 1)):
        if array.ndim > core and array.shape[0] != E.shape[0]:
            problems.append(f"{name} has {array.shape[0]} tasks but the embeddings have {E.shape[0]}")
    raise_if_problems(problems, InputError, "head inputs do not match")
    return E, W, b


def check_labels(y, E: np.ndarray, n_classes: int) -> np.ndarray:
    """Integer labels of shape E.shape[:-1] with values in [0, n_classes)."""
    labels = np.asarray(y)
    if labels.dtype.kind not in "iu":
        raise InputError(f"labels must be integers (class indices), found dtype {labels.dtype}")
    if labels.shape != E.shape[:-1]:
        raise InputError(f"labels must have shape {E.shape[:-1]} (one per embedding), found {labels.shape}")
    if labels.size and (labels.min() < 0 or labels.max() >= n_classes):
        raise InputError(
            f"labels must lie in [0, {n_classes}) for a {n_classes}-class head, "
            f"found values from {labels.min()} to {labels.max()}"
        )
    return labels
