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
    last = expected.index(None)  # the page shows the last query's answer: make it an "unknown" one
    queries.append(queries.pop(last))
    expected.append(expected.pop(last))
    case = tmp_path / "case.json"
    case.write_text(json.dumps({"classes": classes, "queries": [_url(q) for q in queries], "reject": 0.05}))
    result = subprocess.run(["node", "drive.js", server, str(case)], cwd=folder, capture_output=True, text=True,
                            timeout=180, env={**__import__("os").environ, "CHROMIUM": CHROMIUM})
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert None in expected and any(expected)  # both answers occur: the threshold is really applied
    assert [r["label"] for r in out["results"]] == expected
    # "unknown" on the page comes with no probability that names a class
    assert out["shown"]["answer"] == "→ unknown" and out["shown"]["probability_rows"] == 0
    assert "probabilit" not in out["shown"]["detail"] and "below" in out["shown"]["detail"]


def test_the_page_guides_a_user_through_its_steps(server, tmp_path):
    """As a user meets it: numbered steps with the current one highlighted; a control that cannot
    act is disabled and says why; a wide photo keeps its aspect ratio on the pad; a file that is
    not an image is reported on the page; no console error or uncaught exception at any point."""
    if CHROMIUM is None:
        pytest.skip("Chromium is needed for the browser test (.ci/run installs Debian's chromium package)")
    from PIL import Image

    folder = EXAMPLES / "web"
    npm_install(folder)
    files = {}
    for name, colour in (("dark", (10, 10, 10)), ("light", (245, 245, 245))):
        files[name] = tmp_path / f"{name}.png"
        Image.new("RGB", (150, 64), colour).save(files[name])  # wide: 150 x 64
    (tmp_path / "notes.txt").write_text("not an image")
    case = tmp_path / "case.json"
    case.write_text(json.dumps({"classes": {"dark": [str(files["dark"])], "light": [str(files["light"])]},
                                "query": str(files["dark"]), "reject": "", "not_an_image": str(tmp_path / "notes.txt")}))
    result = subprocess.run(["node", "walkthrough.js", server, str(case)], cwd=folder, capture_output=True, text=True,
                            timeout=180, env={**__import__("os").environ, "CHROMIUM": CHROMIUM})
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout.strip().splitlines()[-1])
    seen = out["seen"]
    assert out["errors"] == []
    assert seen["loaded"]["steps"] == ["current", "", ""]
    assert seen["loaded"]["disabled"] == {"add": True, "upload": False, "enroll": True, "predict": True, "query": True}
    assert "add an example first" in seen["loaded"]["why"]["enroll"] and "enroll first" in seen["loaded"]["why"]["predict"]
    assert seen["after_idle_clicks"] == seen["loaded"]  # clicking what cannot act changes nothing
    assert seen["examples_added"]["steps"] == ["done", "current", ""] and not seen["examples_added"]["disabled"]["enroll"]
    assert seen["enrolled"]["steps"] == ["done", "done", "current"]
    assert seen["enrolled"]["disabled"]["query"] is False and seen["enrolled"]["disabled"]["predict"] is True
    assert "draw on the pad" in seen["enrolled"]["why"]["predict"]
    assert seen["drawn"]["disabled"]["predict"] is False and seen["drawn"]["disabled"]["add"] is False
    answer = seen["classified"]
    assert answer["answer"] == "→ dark" and answer["probability_rows"] == 2
    white, dark = [255, 255, 255, 255], [10, 10, 10, 255]
    assert seen["pad"]["top_centre"] == white  # letterboxed, not stretched to the square pad
    assert seen["pad"]["centre"] == dark and seen["pad"]["left_middle"] == dark
    assert "notes.txt cannot be read as an image" in seen["bad_file"]["status"]
    assert seen["bad_file"]["answer"] == answer["answer"]  # nothing was lost
