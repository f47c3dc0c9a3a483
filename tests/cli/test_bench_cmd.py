"""``anil-edge bench`` through the real command line."""

from __future__ import annotations

import pytest

pytest.importorskip("torch")
pytest.importorskip("learn2learn")

from .helpers import anil_edge


def test_bench_head_prints_its_table():
    result = anil_edge("bench", "head", "--repeats", "2")
    assert result.returncode == 0, result.stderr
    rows = [line for line in result.stdout.splitlines() if line.startswith("| ") and line[2].isdigit()]
    assert len(rows) == 24 and "numpy µs" in result.stdout and "ONNX unrolled µs" in result.stdout


@pytest.mark.parametrize("args,message", [
    (["bench", "nope"], "invalid choice: 'nope'"),
    (["train", "--ways", "x"], "invalid int value: 'x'"),
    (["frobnicate"], "invalid choice: 'frobnicate'"),
])
def test_bad_options_are_one_line(args, message):
    result = anil_edge(*args)
    assert result.returncode == 2 and message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
