"""What this machine's CPU computes natively, read from the operating system (no torch).

Used to say before shipping whether INT8 will pay on a CPU (:func:`int8_acceleration`) and to
describe the machine beside every timing (:func:`cpu_name`). On x86-64, onnxruntime's INT8
kernels (MLAS) are fast with VNNI (``vpdpbusd``) or AMX tiles; with AVX2 alone they multiply
u8×s8 pairs into int16 (``vpmaddubsw``) and are often no faster than FP32. On ARM64 the dot
product instructions (``asimddp``/``i8mm``) play VNNI's part.
"""

from __future__ import annotations

import functools
import platform
from pathlib import Path

CPUINFO = Path("/proc/cpuinfo")
# Native INT8 dot products, best first: (flag in /proc/cpuinfo, what to call it).
INT8_FLAGS = (("amx_int8", "AMX-INT8"), ("avx512_vnni", "AVX512-VNNI"), ("avx_vnni", "AVX-VNNI"),
              ("i8mm", "ARM i8mm"), ("asimddp", "ARM dot product"))
BF16_FLAGS = (("amx_bf16", "AMX-BF16"), ("avx512_bf16", "AVX512-BF16"), ("bf16", "ARM bf16"))
# The CPU classes an INT8 model's metadata names (``exact_on``/``faster_on``, runtime/int8_variants.py),
# each with what decides it. An x86-64 CPU whose flags are unknown (no /proc/cpuinfo: Windows, macOS
# on Intel) counts as x86-avx2, the class on which the most formats saturate; "other" is any other
# machine (32-bit ARM, RISC-V, a browser's WebAssembly). examples/web/anil_edge_client.mjs classifies
# the same way (a test checks it).
CPU_CLASSES = {
    "x86-amx": "x86-64 with AMX-INT8 tiles",
    "x86-vnni": "x86-64 with AVX512-VNNI or AVX-VNNI",
    "x86-avx2": "x86-64 without VNNI (AVX2 or less, or flags unknown)",
    "arm64-dot": "ARM64 with dot-product instructions (asimddp or i8mm; all Apple silicon)",
    "arm64": "ARM64 without dot-product instructions",
    "other": "any other machine",
}
X86_MACHINES = ("x86_64", "amd64", "x64")
ARM64_MACHINES = ("aarch64", "arm64")


@functools.lru_cache(maxsize=1)
def cpu_flags() -> frozenset[str]:
    """The CPU's feature flags (Linux ``/proc/cpuinfo``; empty where the OS does not say)."""
    try:
        text = CPUINFO.read_text(errors="replace")
    except OSError:
        return frozenset()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip().lower() in ("flags", "features"):
            return frozenset(value.split())
    return frozenset()


@functools.lru_cache(maxsize=1)
def cpu_name() -> str:
    """The CPU's model name (as ``lscpu`` prints it), or the platform's processor string."""
    try:
        for line in CPUINFO.read_text(errors="replace").splitlines():
            key, _, value = line.partition(":")
            if key.strip().lower() in ("model name", "hardware", "cpu model") and value.strip():
                return value.strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def _first(table: tuple[tuple[str, str], ...], flags: frozenset[str]) -> str | None:
    return next((name for flag, name in table if flag in flags), None)


def int8_acceleration(flags: frozenset[str] | None = None) -> str | None:
    """The CPU's native INT8 dot-product instructions (e.g. "AVX512-VNNI"), or None: then an
    INT8 model is usually no faster than FP32 on it. Apple silicon (no /proc/cpuinfo) has them."""
    flags = cpu_flags() if flags is None else flags
    if not flags and platform.system() == "Darwin" and platform.machine() == "arm64":
        return "ARM dot product"
    return _first(INT8_FLAGS, flags)


def cpu_class(flags: frozenset[str] | None = None, machine: str | None = None) -> str:
    """This CPU's class, one of :data:`CPU_CLASSES`, from its flags and ``platform.machine()``."""
    flags = cpu_flags() if flags is None else flags
    machine = (platform.machine() if machine is None else machine).lower()
    if machine in X86_MACHINES:
        return "x86-amx" if "amx_int8" in flags else "x86-vnni" if {"avx512_vnni", "avx_vnni"} & flags else "x86-avx2"
    if machine in ARM64_MACHINES:
        apple = not flags and platform.system() == "Darwin"
        return "arm64-dot" if apple or {"asimddp", "i8mm"} & flags else "arm64"
    return "other"


def bf16_acceleration(flags: frozenset[str] | None = None) -> str | None:
    """The CPU's native bfloat16 arithmetic (AMX-BF16, AVX512-BF16, ARM bf16), or None."""
    return _first(BF16_FLAGS, cpu_flags() if flags is None else flags)


def int8_speed_note(flags: frozenset[str] | None = None, weights: str = "int8") -> str:
    """One line on whether INT8 should be faster than FP32 on this CPU. ``weights`` is the INT8
    model's weight type: with "uint8" (the ``u8u8`` format) onnxruntime widens products to int16
    and cannot use VNNI or AMX (export/quantize.py)."""
    found = int8_acceleration(flags)
    if found and weights == "uint8":
        return (f"this CPU has {found}, but a model with uint8 weights (u8u8) cannot use it: it may be slower than "
                "FP32 here (anil-edge bench export measures it)")
    if found:
        return f"INT8 has native dot products on this CPU ({found})"
    return ("this CPU has no VNNI, AMX or ARM dot-product instructions: whether INT8 is faster than FP32 here "
            "depends on the model (on an AVX2-only EPYC, a Conv-4 ran at 0.8x and EfficientNet-Lite0 at 1.7x; "
            "anil-edge bench export measures it)")
