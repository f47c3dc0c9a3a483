"""examples/node: the Node.js client enrolls and predicts with only the exported files, and agrees
with the Python runtime (labels equal, probabilities within 1e-4)."""

from __future__ import annotations

import json
import subprocess

import numpy as np
import pytest

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


def test_node_client_runs_the_backbone_model_json_says_is_exact_and_faster_here(export_dir, glyph_files, tmp_path):
    """--precision auto follows model.json's exact_on/faster_on; --precision int8 is refused where
    the INT8 model is not exact (whatever this CPU's class: the lists are set to all or none)."""
    import shutil as sh

    from anil_edge.cpu_features import CPU_CLASSES

    folder = EXAMPLES / "node"
    npm_install(folder)
    model = tmp_path / "model"
    sh.copytree(export_dir, model)
    sidecar = json.loads((model / "model.json").read_text())
    q = sidecar["files"]["backbone_int8_pixels"]["quantization"]
    for exact, precision, expected in (([], "int8", "is not exact on this CPU"),
                                       (list(CPU_CLASSES), "auto", "backbone: model.int8.pixels.onnx")):
        q.update(exact_on=exact, faster_on=list(CPU_CLASSES))
        (model / "model.json").write_text(json.dumps(sidecar))
        result = subprocess.run(["node", "enroll_predict.js", str(model), str(glyph_files / "classes"),
                                 str(glyph_files / "queries"), "--precision", precision], cwd=folder,
                                capture_output=True, text=True, timeout=120)
        assert expected in result.stderr and result.returncode == (2 if precision == "int8" else 0), result.stderr


def test_node_client_says_what_is_missing(tmp_path):
    folder = EXAMPLES / "node"
    npm_install(folder)
    result = subprocess.run(["node", "enroll_predict.js", str(tmp_path), str(tmp_path), str(tmp_path)], cwd=folder,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "model.json not found" in result.stderr


def test_the_readme_node_lines_run_as_written_from_their_folder(export_dir, glyph_files, tmp_path):
    """The README's Node lines, typed in a checkout: cd into the client's folder, npm ci, and the
    command with its paths relative to that folder (runs/photos/ is the export)."""
    import shutil

    from tests.helpers import readme_commands

    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.skip("node and npm are needed for the JavaScript clients; none found on PATH")
    lines = readme_commands("## Node, the browser, any language")
    assert lines[0] == "cd examples/node" and lines[1] == "npm ci" and lines[2].startswith("node "), lines
    shutil.copytree(EXAMPLES / "node", tmp_path / "examples" / "node", ignore=shutil.ignore_patterns("node_modules"))
    (tmp_path / "examples" / "web").mkdir()
    shutil.copy(EXAMPLES / "web" / "anil_edge_client.mjs", tmp_path / "examples" / "web")
    shutil.copytree(export_dir, tmp_path / "runs" / "photos")
    shutil.copytree(glyph_files / "classes", tmp_path / "my_products")
    shutil.copytree(glyph_files / "queries", tmp_path / "shelf")
    result = subprocess.run(["bash", "-c", " && ".join(lines)], cwd=tmp_path, capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0, result.stderr
    assert "npm warn" not in result.stderr.lower(), result.stderr  # no "Unknown cli config"
    rows = [line for line in result.stdout.splitlines() if line.startswith("../../shelf/")]
    assert len(rows) == len(list((glyph_files / "queries").iterdir())), result.stdout
