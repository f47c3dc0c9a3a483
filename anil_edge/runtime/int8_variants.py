"""Which backbone file to run on this CPU: the FP32 model, or the INT8 model beside it.

Two questions decide it, both answered per CPU class (:data:`anil_edge.cpu_features.CPU_CLASSES`)
and recorded by the export in the INT8 model's ``extra.quantization`` (and so in ``model.json``):

- **exact_on**: where onnxruntime computes the INT8 graph exactly. x86-64 without VNNI multiplies
  u8×s8 pairs with ``vpmaddubsw``, which saturates an int16 pair sum above 32767; VNNI, AMX and
  ARM64 widen before adding. A model whose pair sums cannot pass int16 (``avx2_saturation_free``:
  7-bit or uint8 weights) is exact everywhere; one that can is exact on the x86-vnni, x86-amx and
  ARM64 classes only, never on x86-avx2 or on "other" (kernels this rule does not know).
- **faster_on**: where it is expected to beat FP32. From onnxruntime's kernels (MLAS): signed
  weights use the int8 dot products of the x86-vnni and x86-amx classes (``vpdpbusd``, AMX
  tiles); on ARM64 with dot products both weight types run on ``udot``; x86 widens uint8 weights
  to int16 (``vpmaddwd``), which cannot use VNNI or AMX. Elsewhere (x86-avx2, ARM64 without dot
  products) it depends on the model, so only a measurement says so: the export times both models
  on its own CPU and its class is in or out by that figure (:data:`FASTER`), whatever the rule
  says.

``precision`` (:data:`PRECISIONS`) asks for a file:

- ``"file"``: the file named, refused if it is an INT8 model that is not exact on this CPU;
- ``"fp32"``: the FP32 model of the export (``model.onnx`` for ``model.int8.onnx`` too);
- ``"int8"``: its INT8 model, refused where it is not exact;
- ``"auto"``: the INT8 model where it is exact and faster, else the FP32 model.

Every answer carries its reasons, which ``anil-edge info`` prints.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..cpu_features import CPU_CLASSES
from ..errors import InputError, ModelError
from .export_files import beside, family_base

PRECISIONS = ("file", "auto", "fp32", "int8")
FASTER = 1.1  # a measured INT8 must run this many times faster than FP32 to count as faster (FP32 wins ties)
DOT_PRODUCT_CLASSES = ("x86-amx", "x86-vnni", "arm64-dot")
WIDENING_CLASSES = ("x86-amx", "x86-vnni", "arm64-dot", "arm64")  # u8×s8 kernels that widen before adding


@dataclass(frozen=True)
class Int8Speed:
    """One timing of the INT8 model against FP32 (batch 1, one thread), with the CPU it ran on."""

    cpu: str  # lscpu's model name
    cpu_class: str  # one of CPU_CLASSES
    fp32_ms: float  # median ms per image
    int8_ms: float

    def __post_init__(self) -> None:
        if self.cpu_class not in CPU_CLASSES:
            raise ModelError(f"measured.cpu_class must be one of {tuple(CPU_CLASSES)}, found {self.cpu_class!r}")
        if not (self.fp32_ms > 0 and self.int8_ms > 0):
            raise ModelError(f"measured times must be > 0 ms, found fp32 {self.fp32_ms!r}, int8 {self.int8_ms!r}")

    @property
    def speedup(self) -> float:
        return self.fp32_ms / self.int8_ms


def exact_on(saturation_free: bool) -> list[str]:
    """The CPU classes where onnxruntime computes an INT8 model exactly (module docstring)."""
    return list(CPU_CLASSES) if saturation_free else list(WIDENING_CLASSES)


def faster_on(signed_weights: bool, measured: Int8Speed | None) -> list[str]:
    """The CPU classes where an INT8 model is expected to beat FP32: onnxruntime's kernels, then
    the export's measurement for its own class (module docstring)."""
    found = set(DOT_PRODUCT_CLASSES if signed_weights else ("arm64-dot",))
    if measured is not None:
        (found.add if measured.speedup >= FASTER else found.discard)(measured.cpu_class)
    return [c for c in CPU_CLASSES if c in found]


def speed_basis(quantization: Mapping[str, Any], cpu_class: str) -> str:
    """Why the INT8 model is or is not expected to be faster on ``cpu_class``, in a few words."""
    measured = _measured(quantization)
    if measured is not None and measured.cpu_class == cpu_class:
        return (f"measured at export on {measured.cpu}: {measured.speedup:.2f}x FP32 "
                f"({measured.int8_ms:.2f} vs {measured.fp32_ms:.2f} ms per image, 1 thread)")
    if cpu_class in quantization.get("faster_on", ()):
        return "onnxruntime's int8 dot-product kernels for this CPU class"
    if cpu_class in DOT_PRODUCT_CLASSES:
        return "uint8 weights are widened to int16 here and cannot use the int8 dot products"
    return "no measurement on this CPU class, where it depends on the model (anil-edge bench export measures it)"


def int8_quantization(meta: Any) -> dict[str, Any] | None:
    """An INT8 model's ``extra.quantization`` from its metadata (empty if it predates it); None
    for an FP32 model: what :func:`choose_backbone` reads of each file."""
    return dict(meta.extra.get("quantization") or {}) if meta.extra.get("precision") == "int8" else None


def where_int8_runs(quantization: Mapping[str, Any]) -> str:
    """One line: the CPU classes where the INT8 model is exact, and those where ``"auto"`` runs it."""
    v = _variant(Path("int8"), quantization, "other")
    runs = [c for c in v.faster_classes if c in v.exact_classes]
    exact = "every CPU class" if set(v.exact_classes) == set(CPU_CLASSES) else ", ".join(v.exact_classes)
    return f"exact on {exact}; precision 'auto' runs it on {', '.join(runs) or 'none (FP32 everywhere)'}"


@dataclass(frozen=True)
class BackboneChoice:
    """The backbone file chosen for this CPU, and why."""

    path: Path
    precision: str  # "fp32" or "int8"
    cpu_class: str
    reasons: tuple[str, ...]  # one line per file considered

    def summary(self) -> str:
        return f"{self.path.name} ({self.precision}) on {self.cpu_class}: " + "; ".join(self.reasons)


@dataclass(frozen=True)
class _Variant:
    path: Path
    quantization: Mapping[str, Any]
    exact: bool  # on the CPU class it was read for
    faster: bool
    exact_classes: tuple[str, ...]
    faster_classes: tuple[str, ...]


def choose_backbone(path: str | os.PathLike[str], precision: str, cpu_class: str,
                    read_quantization: Callable[[Path], Mapping[str, Any] | None]) -> BackboneChoice:
    """The file to load for ``path`` under ``precision`` on ``cpu_class``.
    ``read_quantization(file)`` gives an INT8 file's ``extra.quantization`` (None for FP32)."""
    if precision not in PRECISIONS:
        raise InputError(f"precision must be one of {PRECISIONS}, found {precision!r}")
    path = Path(path)
    if precision == "file":
        quantization = read_quantization(path)
        if quantization is None:
            return BackboneChoice(path, "fp32", cpu_class, ("the file named",))
        return _refuse_inexact(_variant(path, quantization, cpu_class), cpu_class, "the file named")
    base = family_base(path)
    int8_path = beside(base, "int8.onnx")
    int8 = _variant(int8_path, read_quantization(int8_path) or {}, cpu_class) if int8_path.is_file() else None
    if precision == "int8":
        if int8 is None:
            raise ModelError(f"precision='int8' was asked for, but there is no {int8_path.name} beside {base.name}: "
                             "export with --int8, or ask for 'auto' or 'fp32'")
        return _refuse_inexact(int8, cpu_class, "asked for")
    if precision == "auto" and int8 is not None and int8.exact and int8.faster:
        return BackboneChoice(int8.path, "int8", cpu_class, (_describe(int8, cpu_class),))
    why = "asked for" if precision == "fp32" else "no INT8 model beside it" if int8 is None else _describe(int8, cpu_class)
    return BackboneChoice(base, "fp32", cpu_class, (why,))


def _variant(path: Path, quantization: Mapping[str, Any], cpu_class: str) -> _Variant:
    exact = quantization.get("exact_on")
    fast = quantization.get("faster_on")
    if exact is None:  # written before 0.2.1: from the weights' bound
        exact = exact_on(bool(quantization.get("avx2_saturation_free", False)))
    if fast is None:  # written before 0.2.1: the kernels' rule alone
        fast = faster_on(quantization.get("weights", "uint8") != "uint8", None)
    return _Variant(path, quantization, cpu_class in exact, cpu_class in fast, tuple(exact), tuple(fast))


def _describe(v: _Variant, cpu_class: str) -> str:
    fmt = v.quantization.get("format", "?")
    if not v.exact:
        return f"{v.path.name} (format {fmt}) is not exact here: {_inexact_reason(cpu_class)}"
    verdict = "faster than FP32" if v.faster else "not faster than FP32"
    return f"{v.path.name} (format {fmt}) is exact here and {verdict}: {speed_basis(v.quantization, cpu_class)}"


def _inexact_reason(cpu_class: str) -> str:
    if cpu_class == "x86-avx2":
        return "its int8 weights can saturate the int16 pair sums of AVX2 kernels without VNNI"
    return f"its int8 weights can saturate kernels that onnxruntime may use on {cpu_class} ({CPU_CLASSES[cpu_class]})"


def _refuse_inexact(v: _Variant, cpu_class: str, how: str) -> BackboneChoice:
    if not v.exact:
        raise ModelError(f"{v.path} is not exact on this CPU ({cpu_class}): {_inexact_reason(cpu_class)}. Load "
                         f"{family_base(v.path).name} with precision='auto' (CLI: --precision auto), which runs FP32 "
                         "here, or export with --int8-format auto (7-bit or uint8 weights, exact on every CPU)")
    return BackboneChoice(v.path, "int8", cpu_class, (f"{how}; {_describe(v, cpu_class)}",))


def _measured(quantization: Mapping[str, Any]) -> Int8Speed | None:
    record = quantization.get("measured")
    if not isinstance(record, Mapping):
        return None
    try:
        return Int8Speed(**record)
    except (TypeError, ModelError):
        return None
