"""examples/web: the browser page enrolls and predicts with onnxruntime-web in headless Chromium
(Debian's package; nothing downloaded at run time) and agrees with the Python runtime."""

from __future__ import annotations

import base64
import json
import subprocess
from pathlib import Path

import pytest

from tests.tolerances import CLIENT_TERMS, assert_f32_close

from .helpers import CHROMIUM, EXAMPLES, npm_install


def _url(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode()


def test_browser_page_agrees_with_the_python_runtime(server, glyph_files, reference, tmp_path):
    if CHROMIUM is None:
        pytest.skip("Chromium is needed for the browser test (.ci/run installs Debian's chromium package)")
    folder = EXAMPLES / "web"
    npm_install(folder)
    classes = {d.name: [_url(p) for p in sorted(d.glob("*.png"))] for d in sorted((glyph_files / "classes").iterdir())}
    queries, predictions, probabilities = reference
    case = tmp_path / "case.json"
    case.write_text(json.dumps({"classes": classes, "queries": [_url(q) for q in queries]}))
    result = subprocess.run(["node", "drive.js", server, str(case), str(tmp_path / "page.png")], cwd=folder,
                            capture_output=True, text=True, timeout=180, env={**__import__("os").environ,
                                                                               "CHROMIUM": CHROMIUM})
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["errors"] == []
    rows = out["results"]
    assert [r["label"] for r in rows] == [p.label for p in predictions]
    # the same graphs through onnxruntime-web's wasm kernels (probabilities: scale 1)
    assert_f32_close([r["probabilities"] for r in rows], probabilities, terms=CLIENT_TERMS, scale=1.0)
    assert (tmp_path / "page.png").stat().st_size > 1000  # the page rendered


def test_the_browser_page_says_unknown_with_the_calibrated_threshold(server, glyph_files, export_dir, tmp_path):
    """reject=0.05 on the page: the label is None ("unknown") exactly where the Python runtime
    with reject=0.05 says so, using the threshold model.json carries."""
    if CHROMIUM is None:
        pytest.skip("Chromium is needed for the browser test (.ci/run installs Debian's chromium package)")
    from anil_edge.runtime import Backbone, FewShotClassifier

    folder = EXAMPLES / "web"
    npm_install(folder)
    classes = {d.name: [_url(p) for p in sorted(d.glob("*.png"))] for d in sorted((glyph_files / "classes").iterdir())}
    queries = sorted((glyph_files / "queries").glob("*.png"))
    clf = FewShotClassifier(Backbone(export_dir / "model.onnx"), reject=0.05)
    clf.enroll_folder(glyph_files / "classes")
    expected = [p.label for p in clf.predict([str(q) for q in queries])]
    case = tmp_path / "case.json"
    case.write_text(json.dumps({"classes": classes, "queries": [_url(q) for q in queries], "reject": 0.05}))
    result = subprocess.run(["node", "drive.js", server, str(case)], cwd=folder, capture_output=True, text=True,
                            timeout=180, env={**__import__("os").environ, "CHROMIUM": CHROMIUM})
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout.strip().splitlines()[-1])["results"]
    assert None in expected and any(expected)  # both answers occur: the threshold is really applied
    assert [r["label"] for r in rows] == expected
