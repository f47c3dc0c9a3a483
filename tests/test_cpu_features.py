"""What the CPU computes natively, read from the OS: the answers behind "INT8 will not pay here"."""

from __future__ import annotations

import pytest

from anil_edge import cpu_features
from anil_edge.cpu_features import bf16_acceleration, int8_acceleration, int8_speed_note

EPYC_ZEN2 = frozenset("fpu sse sse2 avx avx2 fma f16c".split())  # AMD EPYC family 23: AVX2 only
SAPPHIRE_RAPIDS = frozenset("avx2 avx512f avx512_vnni avx512_bf16 amx_bf16 amx_int8 amx_tile".split())
ZEN4 = frozenset("avx2 avx512f avx512_vnni avx512_bf16".split())
GRAVITON2 = frozenset("fp asimd asimddp".split())


@pytest.mark.parametrize("flags, int8, bf16", [
    (EPYC_ZEN2, None, None), (SAPPHIRE_RAPIDS, "AMX-INT8", "AMX-BF16"), (ZEN4, "AVX512-VNNI", "AVX512-BF16"),
    (GRAVITON2, "ARM dot product", None),
])
def test_native_instructions_from_the_flags(flags, int8, bf16):
    assert int8_acceleration(flags) == int8 and bf16_acceleration(flags) == bf16


def test_the_speed_note_says_when_int8_will_not_pay():
    assert "depends on the model" in int8_speed_note(EPYC_ZEN2)
    assert "AVX512-VNNI" in int8_speed_note(ZEN4)
    assert "uint8 weights (u8u8) cannot use it" in int8_speed_note(ZEN4, weights="uint8")  # widened to int16
    assert "depends on the model" in int8_speed_note(EPYC_ZEN2, weights="uint8")


def test_cpuinfo_is_read_as_lscpu_does(tmp_path, monkeypatch):
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nmodel name\t: AMD EPYC 7B12\nflags\t\t: fpu avx2 fma\n\nprocessor\t: 1\n")
    monkeypatch.setattr(cpu_features, "CPUINFO", info)
    cpu_features.cpu_flags.cache_clear()
    cpu_features.cpu_name.cache_clear()
    try:
        assert cpu_features.cpu_name() == "AMD EPYC 7B12" and cpu_features.cpu_flags() == {"fpu", "avx2", "fma"}
        assert int8_acceleration() is None
    finally:
        cpu_features.cpu_flags.cache_clear()
        cpu_features.cpu_name.cache_clear()


def test_no_cpuinfo_means_no_claims(tmp_path, monkeypatch):
    monkeypatch.setattr(cpu_features, "CPUINFO", tmp_path / "missing")
    cpu_features.cpu_flags.cache_clear()
    cpu_features.cpu_name.cache_clear()
    try:
        assert cpu_features.cpu_flags() == frozenset() and cpu_features.cpu_name()
    finally:
        cpu_features.cpu_flags.cache_clear()
        cpu_features.cpu_name.cache_clear()
