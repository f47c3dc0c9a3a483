"""Export validation: PyTorch (eager) vs onnxruntime vs TorchScript on the same inputs.

Every comparison is run — random and real images, each batch size — and every mismatch is
collected before :class:`ExportValidationError` is raised (as optimum's
``validate_model_outputs`` does). FP32 tolerance: max |Δ| ≤ 1e-4 × max(1, max |embedding|): float32
rounding grows with the magnitudes compared, and large embeddings (wide raw backbones) must not
fail on a CPU whose kernels sum in another order.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from ..errors import ModelError, require
from .onnx_export import INPUT_NAME

if TYPE_CHECKING:
    from ..train.backbones import BackboneModule

BATCH_SIZES = (1, 7, 64)
FP32_ATOL = 1e-4


class ExportValidationError(ModelError):
    """An exported model does not compute what the PyTorch model computes."""


@dataclass(frozen=True)
class Comparison:
    what: str  # e.g. "onnxruntime vs pytorch, real images, batch 7"
    max_abs: float  # largest |difference| of the embeddings
    tolerance: float

    @property
    def ok(self) -> bool:
        return bool(self.max_abs <= self.tolerance)


@dataclass(frozen=True)
class ValidationReport:
    comparisons: tuple[Comparison, ...]

    @property
    def failures(self) -> tuple[Comparison, ...]:
        return tuple(c for c in self.comparisons if not c.ok)

    def raise_if_failed(self) -> None:
        if self.failures:
            lines = "; ".join(f"{c.what}: max |Δ| {c.max_abs:.3g} > {c.tolerance:.3g}" for c in self.failures)
            raise ExportValidationError(f"{len(self.failures)} of {len(self.comparisons)} checks failed: {lines}")

    def table(self) -> str:
        rows = [f"| {c.what} | {c.max_abs:.2e} | {c.tolerance:.3g} | {'ok' if c.ok else 'FAIL'} |" for c in self.comparisons]
        return "\n".join(["| comparison | max abs diff | tolerance | |", "|---|---|---|---|", *rows])


def validate_export(backbone: BackboneModule, *, onnx_path: str | os.PathLike[str] | None = None,
                    torchscript_path: str | os.PathLike[str] | None = None, real_images: np.ndarray | None = None,
                    atol: float = FP32_ATOL, batch_sizes: tuple[int, ...] = BATCH_SIZES, seed: int = 0) -> ValidationReport:
    """Compare the exported files against ``backbone`` (eval mode) on random images and, when
    given, ``real_images`` (preprocessed, (N, C, H, W)), at each of ``batch_sizes``."""
    torch = require("torch", "train")
    backbone = backbone.eval()
    runners = {}
    if onnx_path is not None:
        runners["onnxruntime"] = _ort_runner(onnx_path)
    if torchscript_path is not None:
        from .torchscript_export import read_torchscript_metadata

        scripted, _ = read_torchscript_metadata(torchscript_path)
        runners["torchscript"] = lambda x: scripted(torch.from_numpy(x)).detach().numpy()
    comparisons = []
    for kind, images in _inputs(backbone, real_images, max(batch_sizes), seed):
        for b in batch_sizes:
            x = np.ascontiguousarray(images[:b])
            with torch.no_grad():
                reference = backbone(torch.from_numpy(x)).numpy()
            for name, run in runners.items():
                diff = float(np.abs(run(x) - reference).max())
                tolerance = atol * max(1.0, float(np.abs(reference).max()))
                comparisons.append(Comparison(f"{name} vs pytorch, {kind} images, batch {b}", diff, tolerance))
    return ValidationReport(tuple(comparisons))


def _inputs(backbone: BackboneModule, real_images: np.ndarray | None, n: int, seed: int):
    c, s = backbone.config.channels, backbone.config.input_size  # every anil-edge backbone has its config
    yield "random", np.random.default_rng(seed).standard_normal((n, c, s, s)).astype(np.float32)
    if real_images is not None:
        reps = -(-n // len(real_images))
        yield "real", np.concatenate([real_images] * reps)[:n].astype(np.float32)


def _ort_runner(path):
    ort = require("onnxruntime", "cpu")
    options = ort.SessionOptions()
    options.log_severity_level = 3
    try:
        session = ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime's own exception types
        raise ExportValidationError(f"onnxruntime cannot load {path}: {exc}") from None
    return lambda x: session.run(None, {INPUT_NAME: x})[0]
