"""The INT8 model checked against the FP32 model on real images before it is shipped.

Two measures, each with a stated threshold; every one that fails is listed in the error:

- **embedding cosine** between the FP32 and INT8 embedding of each image: its median must be at
  least :data:`MEDIAN_COSINE` and its 1st percentile at least :data:`LOW_COSINE` (a few images
  wrecked by saturation or a bad range show up there even when the median looks fine);
- **nearest-class-mean agreement** on labelled images (classes the model never trained on, as
  enrolled on a device): each image goes to the nearest class mean, in each model's own
  embedding space; the INT8 model must agree with FP32 on at least :data:`NCM_AGREEMENT`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import ModelError
from ..runtime.backbone import Backbone

MEDIAN_COSINE = 0.99
LOW_COSINE = 0.95  # at the 1st percentile of images
NCM_AGREEMENT = 0.95
MAX_IMAGES = 1000  # the check embeds at most this many images (an even spread over the set)


class Int8QualityError(ModelError):
    """The INT8 model does not compute what the FP32 model computes closely enough to ship."""


@dataclass(frozen=True)
class Int8Report:
    images: int  # images compared
    median_cosine: float
    low_cosine: float  # 1st percentile
    ncm_agreement: float | None  # None without labels
    format: str = ""  # the INT8 format (quantize.FORMATS) that was checked, when known
    clipped_biases: int = 0  # biases the quantizer clipped to int32 (quantize.clipped_biases); in the figures
    checked_before_whitening: bool = False  # cosines of the embedding before the export's whitening, agreement after

    def problems(self) -> list[str]:
        found = []
        if not self.median_cosine >= MEDIAN_COSINE:
            found.append(f"median embedding cosine to FP32 {self.median_cosine:.4f} < {MEDIAN_COSINE}")
        if not self.low_cosine >= LOW_COSINE:
            found.append(f"1st-percentile embedding cosine {self.low_cosine:.4f} < {LOW_COSINE}")
        if self.ncm_agreement is not None and not self.ncm_agreement >= NCM_AGREEMENT:
            found.append(f"nearest-class-mean agreement with FP32 {100 * self.ncm_agreement:.1f}% < "
                         f"{100 * NCM_AGREEMENT:g}%")
        return found

    def summary(self) -> str:
        ncm = "" if self.ncm_agreement is None else f", nearest-class-mean agreement {100 * self.ncm_agreement:.1f}%"
        clipped = (f"; onnxruntime clipped {self.clipped_biases} bias(es) to the int32 range, which these figures "
                   "include" if self.clipped_biases else "")
        where = " before the whitening" if self.checked_before_whitening else ""
        after = " (after it)" if self.checked_before_whitening and self.ncm_agreement is not None else ""
        return (f"INT8 vs FP32 on {self.images} real images: median cosine{where} {self.median_cosine:.4f}, "
                f"1st percentile {self.low_cosine:.4f}{ncm}{after}{clipped}")


def compare_int8(fp32: Backbone, int8: Backbone, images: np.ndarray, labels: np.ndarray | None = None, *,
                 preprocessed: bool = False) -> Int8Report:
    """Compare the two models on ``images`` — uint8 pixels (N, H, W, C), or with ``preprocessed``
    the backbone's float32 input (N, C, H, W) — with optional class ``labels`` (N,)."""
    pick = np.unique(np.linspace(0, len(images) - 1, min(len(images), MAX_IMAGES)).astype(int))
    x = images[pick]
    a, b = (fp32.embed_input(x), int8.embed_input(x)) if preprocessed else (fp32.embed(x), int8.embed(x))
    cosine = row_cosines(a, b)
    agreement = None
    if labels is not None:
        y = np.unique(np.asarray(labels)[pick], return_inverse=True)[1]
        agreement = float((_nearest_mean(a, y) == _nearest_mean(b, y)).mean())
    return Int8Report(len(pick), float(np.median(cosine)), float(np.percentile(cosine, 1)), agreement)


def check_int8(fp32: Backbone, int8: Backbone, images: np.ndarray, labels: np.ndarray | None = None, *,
               preprocessed: bool = False) -> Int8Report:
    """:func:`compare_int8`, raising :class:`Int8QualityError` listing every failed measure."""
    report = compare_int8(fp32, int8, images, labels, preprocessed=preprocessed)
    problems = report.problems()
    if problems:
        raise Int8QualityError(f"the INT8 model is not shipped: {'; '.join(problems)} ({report.summary()}); try "
                               "another --int8-format or --calibration-method, or ship the FP32 model")
    return report


def row_cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The cosine between each row of ``a`` (N, D) and the same row of ``b``: (N,)."""
    return (a * b).sum(1) / np.maximum(np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1), 1e-30)


def _nearest_mean(E: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Each row's nearest class mean (squared Euclidean) among the classes of ``y``."""
    means = np.stack([E[y == c].mean(0) for c in range(int(y.max()) + 1)])
    d = (E * E).sum(1, keepdims=True) - 2 * E @ means.T + (means * means).sum(1)
    return d.argmin(1)
