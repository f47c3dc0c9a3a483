"""The main job's script (`make demo`) end to end, shrunk to seconds: what it prints."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("learn2learn")
pytest.importorskip("onnxruntime")

ROOT = Path(__file__).resolve().parents[1]


def test_demo_summary(tmp_path):
    env = {**os.environ, "ANIL_EDGE_CACHE": str(tmp_path / "cache"), "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "demo.py"), "--tiny", "--iterations", "4", "--tasks", "10",
         "--glyph-classes", "120", "--out", str(tmp_path / "demo")],
        capture_output=True, text=True, env=env, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    summary = result.stdout.split("# summary")[1]
    lines = {line.split()[0]: line for line in summary.strip().splitlines()}
    assert {"trained", "exported", "meta-test", "enrollment", "prediction"} <= set(lines)
    assert "PyTorch" in lines["meta-test"] and "ONNX FP32" in lines["meta-test"] and "ONNX INT8" in lines["meta-test"]
    assert "parity checks passed" in lines["exported"] and "ms per image" in lines["prediction"]
    for name in ("model.onnx", "model.int8.onnx", "state.npz", "train/curves.png", "train/best.pt"):
        assert (tmp_path / "demo" / name).is_file(), name
    assert len(list((tmp_path / "demo" / "enroll").iterdir())) == 10
