"""examples/node: the Node.js client enrolls and predicts with only the exported files, and agrees
with the Python runtime (labels equal, probabilities within 1e-4)."""

from __future__ import annotations

import json
import subprocess

import numpy as np

from .conftest import EXAMPLES, npm_install


def test_node_client_agrees_with_the_python_runtime(export_dir, glyph_files, reference):
    folder = EXAMPLES / "node"
    npm_install(folder)
    result = subprocess.run(["node", "enroll_predict.js", str(export_dir), str(glyph_files / "classes"),
                             str(glyph_files / "queries"), "--json"], cwd=folder, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    queries, predictions, probabilities = reference
    assert [r["image"] for r in rows] == [str(q) for q in queries]
    assert [r["label"] for r in rows] == [p.label for p in predictions]
    np.testing.assert_allclose([r["probabilities"] for r in rows], probabilities, atol=1e-4)
    np.testing.assert_allclose([r["open_set_score"] for r in rows], [p.score for p in predictions], atol=1e-4)
    assert "enrolled 4 classes" in result.stderr


def test_node_client_rejects_with_the_calibrated_threshold(export_dir, glyph_files):
    folder = EXAMPLES / "node"
    npm_install(folder)
    result = subprocess.run(["node", "enroll_predict.js", str(export_dir), str(glyph_files / "classes"),
                             str(glyph_files / "queries"), "--json", "--reject", "0.05"], cwd=folder,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    threshold = json.loads((export_dir / "model.json").read_text())["metadata"]["open_set"]["thresholds"]["0.05"]
    for row in map(json.loads, result.stdout.splitlines()):
        assert (row["label"] is None) == (row["open_set_score"] < threshold)


def test_node_client_says_what_is_missing(tmp_path):
    folder = EXAMPLES / "node"
    npm_install(folder)
    result = subprocess.run(["node", "enroll_predict.js", str(tmp_path), str(tmp_path), str(tmp_path)], cwd=folder,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "model.json not found" in result.stderr
