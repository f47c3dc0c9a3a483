"""examples/node: the Node.js client enrolls and predicts with only the exported files, and agrees
with the Python runtime (labels equal, probabilities within 1e-4)."""

from __future__ import annotations

import json
import subprocess

import numpy as np

from tests.tolerances import CLIENT_TERMS, assert_f32_close

from .helpers import EXAMPLES, npm_install, python_predictions


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
    # the same graphs through another onnxruntime binding (probabilities and cosines: scale 1)
    assert_f32_close([r["probabilities"] for r in rows], probabilities, terms=CLIENT_TERMS, scale=1.0)
    assert_f32_close([r["open_set_score"] for r in rows], [p.score for p in predictions], terms=CLIENT_TERMS, scale=1.0)
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


def test_node_client_enrolls_with_the_int8_model_like_python(export_dir, glyph_files):
    """--int8: model.int8.pixels.onnx embeds, the INT8 model's own thresholds reject."""
    folder = EXAMPLES / "node"
    npm_install(folder)
    result = subprocess.run(["node", "enroll_predict.js", str(export_dir), str(glyph_files / "classes"),
                             str(glyph_files / "queries"), "--json", "--int8", "--reject", "0.05"], cwd=folder,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    queries, predictions, probabilities = python_predictions(export_dir, glyph_files, "model.int8.onnx")
    assert [r["best_label"] for r in rows] == [p.best_label for p in predictions]
    # the pixel graph and numpy preprocess 1 ulp apart at most, which can move an input to the
    # neighbouring INT8 quantum: a bounded change, far below what tells classes apart
    np.testing.assert_allclose([r["probabilities"] for r in rows], probabilities, atol=1e-2)
    sidecar = json.loads((export_dir / "model.json").read_text())
    threshold = sidecar["files"]["backbone_int8_pixels"]["open_set"]["thresholds"]["0.05"]
    assert threshold != sidecar["metadata"]["open_set"]["thresholds"]["0.05"]
    assert all((r["label"] is None) == (r["open_set_score"] < threshold) for r in rows)


def test_node_client_says_when_no_int8_model_was_exported(export_dir, glyph_files, tmp_path):
    folder = EXAMPLES / "node"
    npm_install(folder)
    sidecar = json.loads((export_dir / "model.json").read_text())
    del sidecar["files"]["backbone_int8_pixels"]
    (tmp_path / "model.json").write_text(json.dumps(sidecar))
    result = subprocess.run(["node", "enroll_predict.js", str(tmp_path), str(glyph_files / "classes"),
                             str(glyph_files / "queries"), "--int8"], cwd=folder, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 2 and "lists no backbone_int8_pixels file: export with --int8" in result.stderr


def test_node_client_says_what_is_missing(tmp_path):
    folder = EXAMPLES / "node"
    npm_install(folder)
    result = subprocess.run(["node", "enroll_predict.js", str(tmp_path), str(tmp_path), str(tmp_path)], cwd=folder,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "model.json not found" in result.stderr
