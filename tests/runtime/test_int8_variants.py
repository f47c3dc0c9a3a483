"""Which backbone file runs on which CPU (runtime/int8_variants.py), with faked CPU features:
an INT8 model is never run where its kernels can saturate, and runs under "auto" only where it
is exact and faster than FP32 (onnxruntime's kernels, overridden by the export's measurement)."""

from __future__ import annotations

from dataclasses import asdict

import pytest

from anil_edge.cpu_features import CPU_CLASSES, cpu_class
from anil_edge.errors import InputError, ModelError
from anil_edge.runtime.int8_variants import Int8Speed, choose_backbone, exact_on, faster_on, where_int8_runs

AVX2_ONLY = frozenset("fpu sse2 avx avx2 fma f16c".split())  # AMD EPYC Zen 2
ZEN4 = frozenset("avx2 avx512f avx512_vnni avx512_bf16".split())
SAPPHIRE_RAPIDS = frozenset("avx2 avx512f avx512_vnni amx_bf16 amx_int8 amx_tile".split())
ALDER_LAKE = frozenset("avx2 avx_vnni".split())
GRAVITON2 = frozenset("fp asimd asimddp".split())
CORTEX_A72 = frozenset("fp asimd crc32".split())  # Raspberry Pi 4: no dot products


@pytest.mark.parametrize("flags, machine, expected", [
    (AVX2_ONLY, "x86_64", "x86-avx2"), (ZEN4, "x86_64", "x86-vnni"), (ALDER_LAKE, "AMD64", "x86-vnni"),
    (SAPPHIRE_RAPIDS, "x86_64", "x86-amx"), (frozenset(), "AMD64", "x86-avx2"),  # flags unknown: the worst case
    (GRAVITON2, "aarch64", "arm64-dot"), (CORTEX_A72, "aarch64", "arm64"), (frozenset(), "riscv64", "other"),
])
def test_the_cpu_class_from_its_flags(flags, machine, expected):
    assert cpu_class(flags, machine) == expected


def quantization(weights: str, saturation_free: bool, measured: Int8Speed | None = None) -> dict:
    return {"format": {"uint8": "u8u8", "int8": "u8s8", "int8, 7-bit range": "u8s8-reduced"}[weights],
            "weights": weights, "avx2_saturation_free": saturation_free, "exact_on": exact_on(saturation_free),
            "faster_on": faster_on(weights != "uint8", measured), **({"measured": asdict(measured)} if measured else {})}


@pytest.fixture()
def export(tmp_path):
    (tmp_path / "model.onnx").touch()
    (tmp_path / "model.int8.onnx").touch()
    return tmp_path


def choose(folder, q, cls, precision="auto", name="model.onnx"):
    return choose_backbone(folder / name, precision, cls, lambda p: q if p.name == "model.int8.onnx" else None)


U8S8 = quantization("int8", saturation_free=False)  # 8-bit signed weights whose pair sums pass int16


@pytest.mark.parametrize("cls, expected", [("x86-avx2", "fp32"), ("other", "fp32"), ("x86-vnni", "int8"),
                                           ("x86-amx", "int8"), ("arm64-dot", "int8"), ("arm64", "fp32")])
def test_auto_runs_a_saturating_model_only_where_it_is_exact_and_fast(export, cls, expected):
    choice = choose(export, U8S8, cls)
    assert choice.precision == expected and choice.path.name == ("model.int8.onnx" if expected == "int8" else "model.onnx")
    if cls == "x86-avx2":
        assert "saturate the int16 pair sums" in choice.reasons[0]


def test_asking_for_a_saturating_model_on_avx2_is_refused_whichever_way(export):
    for precision, name in (("int8", "model.onnx"), ("file", "model.int8.onnx")):
        with pytest.raises(ModelError, match=r"model.int8.onnx is not exact on this CPU \(x86-avx2\).*precision='auto'"):
            choose(export, U8S8, "x86-avx2", precision, name)
    assert choose(export, U8S8, "x86-vnni", "file", "model.int8.onnx").precision == "int8"


def test_uint8_weights_are_exact_everywhere_but_not_run_where_they_cannot_use_dot_products(export):
    u8u8 = quantization("uint8", saturation_free=True)
    vnni = choose(export, u8u8, "x86-vnni")
    assert vnni.precision == "fp32" and "widened to int16" in vnni.reasons[0]
    assert choose(export, u8u8, "arm64-dot").precision == "int8"  # MLAS runs u8u8 on udot
    assert choose(export, u8u8, "x86-avx2", "int8").precision == "int8"  # exact, so it may be asked for


def test_the_exports_measurement_decides_its_own_cpu_class(export):
    fast_here = quantization("int8, 7-bit range", True, Int8Speed("AMD EPYC", "x86-avx2", 4.77, 2.84))
    choice = choose(export, fast_here, "x86-avx2")
    assert choice.precision == "int8" and "measured at export on AMD EPYC: 1.68x FP32" in choice.reasons[0]
    assert choose(export, fast_here, "arm64").precision == "fp32"  # not measured there: FP32
    slow_here = quantization("int8, 7-bit range", True, Int8Speed("Zen 4", "x86-vnni", 4.0, 5.0))
    assert choose(export, slow_here, "x86-vnni").precision == "fp32"  # measured 0.8x beats the kernels' rule
    assert choose(export, slow_here, "x86-amx").precision == "int8"


def test_fp32_when_asked_or_when_there_is_no_int8_model(export):
    assert choose(export, U8S8, "x86-vnni", "fp32", "model.int8.onnx").path.name == "model.onnx"
    (export / "model.int8.onnx").unlink()
    assert choose(export, U8S8, "x86-vnni").reasons == ("no INT8 model beside it",)
    with pytest.raises(ModelError, match="no model.int8.onnx beside model.onnx: export with --int8"):
        choose(export, U8S8, "x86-vnni", "int8")
    with pytest.raises(InputError, match="precision must be one of .* found 'fast'"):
        choose(export, U8S8, "x86-vnni", "fast")


def test_a_model_written_before_the_profile_follows_the_kernels_rule(export):
    old = {"format": "u8s8", "weights": "int8", "avx2_saturation_free": False}
    assert choose(export, old, "x86-avx2").precision == "fp32" and choose(export, old, "x86-vnni").precision == "int8"


def test_the_summary_line_names_where_it_is_exact_and_where_auto_runs_it():
    assert where_int8_runs(U8S8) == ("exact on x86-amx, x86-vnni, arm64-dot, arm64; precision 'auto' runs it on "
                                     "x86-amx, x86-vnni, arm64-dot")
    assert where_int8_runs(quantization("uint8", True)).startswith("exact on every CPU class")
    assert set(exact_on(True)) == set(CPU_CLASSES)
