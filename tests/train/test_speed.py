"""The speed options decided on the machine: candidates from the device's capabilities, the
fastest timed one chosen and cached, a resumed run keeping what it trained with."""

from __future__ import annotations

import json

import pytest

torch = pytest.importorskip("torch")

from anil_edge.train import speed
from anil_edge.train.checkpoint import load_checkpoint
from anil_edge.train.config import TrainConfig
from anil_edge.train.speed import SpeedOptions, candidates, native_bf16, resolve_speed
from anil_edge.train.trainer import train
from tests.train.helpers import tiny_config

CPU = torch.device("cpu")
BIG = dict(ways=20, shots=1, queries=1, meta_batch=8)  # 320 images per backbone call: chunking is a choice


def _fake_timer(table: dict[SpeedOptions, float], calls: list | None = None):
    def timer(config, options, device, bound):
        if calls is not None:
            calls.append(options)
        return table.get(options, 1.0)

    return timer


def test_a_cpu_without_native_bf16_never_tries_bf16():
    options = candidates(TrainConfig(**BIG), CPU, bf16_native=False)
    assert {o.precision for o in options} == {"fp32"}
    assert {(o.channels_last, o.chunk) for o in options} == {(False, 0), (False, 128), (True, 0), (True, 128)}


def test_a_cpu_with_native_bf16_times_it_too():
    assert {o.precision for o in candidates(TrainConfig(**BIG), CPU, bf16_native=True)} == {"fp32", "bf16"}


def test_gpus_stay_in_fp32_and_batch_everything():
    options = candidates(TrainConfig(**BIG), torch.device("cuda"), bf16_native=False)
    assert {(o.precision, o.chunk) for o in options} == {("fp32", 0)}
    assert not native_bf16(torch.device("cuda"))


def test_explicit_options_are_kept_and_not_timed():
    config = TrainConfig(**BIG, precision="bf16", channels_last=False, chunk=64)
    choice = resolve_speed(config, CPU, timer=_fake_timer({}))
    assert choice.options == SpeedOptions("bf16", False, 64) and choice.source == "fixed"


def test_small_calls_are_not_chunked():
    """A backbone call of at most 128 images is one chunk either way: chunk is not a choice."""
    config = TrainConfig(ways=3, shots=1, queries=2, meta_batch=2)
    assert {o.chunk for o in candidates(config, CPU, bf16_native=True)} == {0}


@pytest.mark.parametrize("amx, avx512_bf16, expected", [(False, False, False), (True, False, True), (False, True, True)])
def test_native_bf16_asks_the_cpu(monkeypatch, amx, avx512_bf16, expected):
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: amx, raising=False)
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: avx512_bf16, raising=False)
    assert native_bf16(CPU) is expected


def test_the_fastest_candidate_wins_and_is_cached(tmp_path, monkeypatch):
    monkeypatch.setattr(speed, "native_bf16", lambda device: False)
    fast = SpeedOptions("fp32", False, 0)
    calls: list = []
    first = resolve_speed(TrainConfig(**BIG), CPU, cache_dir=tmp_path, timer=_fake_timer({fast: 0.25}, calls))
    assert first.options == fast and first.source == "measured" and len(calls) == 4
    assert "auto: fp32, channels-first, chunk all — 0.25 s/it" in first.summary()
    again = resolve_speed(TrainConfig(**BIG), CPU, cache_dir=tmp_path, timer=_fake_timer({}, calls))
    assert again.options == fast and again.source == "cached" and len(calls) == 4  # nothing timed again
    other = resolve_speed(TrainConfig(**{**BIG, "hidden": 32}), CPU, cache_dir=tmp_path, timer=_fake_timer({}, calls))
    assert other.source == "measured"  # another model shape: timed on its own


def test_a_damaged_cache_entry_is_timed_again(tmp_path, monkeypatch):
    monkeypatch.setattr(speed, "native_bf16", lambda device: False)
    resolve_speed(TrainConfig(**BIG), CPU, cache_dir=tmp_path, timer=_fake_timer({}))
    (entry,) = (tmp_path / "speed").iterdir()
    for damage in ("{not json", json.dumps({"best": {"precision": "fp64"}, "timings": []})):
        entry.write_text(damage)
        assert resolve_speed(TrainConfig(**BIG), CPU, cache_dir=tmp_path, timer=_fake_timer({})).source == "measured"


def test_a_cached_bf16_choice_is_not_used_where_bf16_is_not_native(tmp_path, monkeypatch):
    """The same CPU name, torch and shape, but a cache written where bf16 was a candidate."""
    monkeypatch.setattr(speed, "native_bf16", lambda device: True)
    bf16 = SpeedOptions("bf16", True, 128)
    resolve_speed(TrainConfig(**BIG), CPU, cache_dir=tmp_path, timer=_fake_timer({bf16: 0.1}))
    monkeypatch.setattr(speed, "native_bf16", lambda device: False)
    choice = resolve_speed(TrainConfig(**BIG), CPU, cache_dir=tmp_path, timer=_fake_timer({}))
    assert choice.options.precision == "fp32" and choice.source == "measured"


def test_timing_a_real_meta_step_leaves_the_random_state_alone():
    config = TrainConfig(ways=3, shots=1, queries=2, hidden=8, blocks=2, meta_batch=2)
    before = torch.random.get_rng_state()
    seconds = speed.time_meta_step(config, SpeedOptions("fp32", True, 0), CPU)
    assert seconds > 0 and torch.equal(before, torch.random.get_rng_state())


def test_training_on_a_cpu_without_native_bf16_runs_fp32(split, tmp_path, monkeypatch):
    monkeypatch.setattr(speed, "native_bf16", lambda device: False)
    monkeypatch.setenv("ANIL_EDGE_CACHE", str(tmp_path / "cache"))
    train(tiny_config(tmp_path / "run", iterations=4, eval_every=2), split)
    assert load_checkpoint(tmp_path / "run" / "last.pt")["speed"]["precision"] == "fp32"


def test_a_resumed_run_keeps_the_options_it_trained_with(split, tmp_path, monkeypatch):
    monkeypatch.setattr(speed, "native_bf16", lambda device: True)
    monkeypatch.setenv("ANIL_EDGE_CACHE", str(tmp_path / "cache"))
    chosen = SpeedOptions("bf16", True, 0)
    monkeypatch.setattr(speed, "time_meta_step", _fake_timer({chosen: 0.01}))
    train(tiny_config(tmp_path / "run", iterations=4, eval_every=2), split, stop_after=2)
    monkeypatch.setattr(speed, "time_meta_step", _fake_timer({SpeedOptions("fp32", False, 0): 0.01}))
    (tmp_path / "cache").rename(tmp_path / "old-cache")  # a new machine: timing would now choose fp32
    train(tiny_config(tmp_path / "run", iterations=4, eval_every=2), split, resume=True)
    assert SpeedOptions.from_dict(load_checkpoint(tmp_path / "run" / "last.pt")["speed"]) == chosen
