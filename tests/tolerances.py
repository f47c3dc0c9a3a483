"""Tolerances from float32 arithmetic, for comparing two computations of the same function.

Two float32 evaluations that differ only in kernel path — blocking, vector width, FMA, the
order of a sum, oneDNN vs. the default convolution, onnxruntime vs. torch — differ by rounding
errors. A sum of ``K`` products of magnitudes up to ``scale`` is off by at most about
``K · eps32 · scale`` (Higham, *Accuracy and Stability of Numerical Algorithms*, §3.1), and
typically by ``sqrt(K) · eps32 · scale``. So every comparison here is **relative to the
magnitudes compared** and **grows with the length of the longest accumulation**, instead of an
absolute figure that one CPU's kernels happen to meet: what passes on a VNNI/AMX Xeon must pass
on an AVX2-only EPYC, and a failure still means a real difference, not rounding.
"""

from __future__ import annotations

import numpy as np

EPS32 = float(np.finfo(np.float32).eps)  # 1.19e-7: float32's unit roundoff × 2


def f32_tolerance(reference, terms: int, scale: float | None = None) -> float:
    """The largest |difference| float32 rounding explains: ``terms`` (the length of the longest
    accumulation on the way, summed over the layers) × eps32 × ``scale`` (default: the largest
    |value| of ``reference``, at least 1e-30)."""
    ref = np.asarray(_numpy(reference), dtype=np.float64)
    magnitude = float(np.abs(ref).max()) if scale is None and ref.size else float(scale or 0.0)
    return terms * EPS32 * max(magnitude, 1e-30)


def assert_f32_close(actual, expected, terms: int, scale: float | None = None, what: str = "") -> None:
    """``actual`` equals ``expected`` up to :func:`f32_tolerance` (elementwise, absolute)."""
    a = np.asarray(_numpy(actual), dtype=np.float64)
    b = np.asarray(_numpy(expected), dtype=np.float64)
    assert a.shape == b.shape, f"{what} shapes differ: {a.shape} vs {b.shape}"
    tol = f32_tolerance(b, terms, scale)
    err = float(np.abs(a - b).max()) if a.size else 0.0
    assert err <= tol, f"{what} max |Δ| {err:.3g} > {tol:.3g} ({terms} terms × eps32 × scale)"


# The head's inner loop (5 closed-form SGD steps on a few dozen embeddings of up to 64-d): each
# step accumulates logits (D terms), the softmax and the gradient (N terms) into W.
HEAD_TERMS = 5 * (64 + 64) + 64


# Another client (Node, the browser) running the pixel model and the head graphs: the tiny
# Conv-4's accumulations, then the head's.
CLIENT_TERMS = 4 * (9 * 32 + 32) + 64 + HEAD_TERMS


def conv_terms(channels: int, blocks: int, kernel: int = 3) -> int:
    """The accumulation length through ``blocks`` 3×3 convolutions of ``channels`` channels (and
    their norms and the final flatten/mean): each output sums kernel² × channels products."""
    return blocks * (kernel * kernel * channels + channels) + 64


def _numpy(x):
    detach = getattr(x, "detach", None)
    return detach().cpu().numpy() if detach is not None else x
