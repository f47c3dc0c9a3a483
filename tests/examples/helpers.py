"""Plain helpers of the example-client tests (fixtures are in conftest.py)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).parents[2] / "examples"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def npm_install(folder: Path) -> None:
    """``npm ci`` once (node_modules is not committed), as the README types it: the folder's
    .npmrc skips install scripts (onnxruntime-node's CPU binaries ship in its package)."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.skip("node and npm are needed for the JavaScript clients; none found on PATH")
    if not (folder / "node_modules").is_dir():
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=folder, check=True, capture_output=True,
                       timeout=600)


def python_predictions(export_dir: Path, glyph_files: Path, model: str = "model.onnx"):
    from anil_edge.runtime import Backbone, FewShotClassifier

    clf = FewShotClassifier(Backbone(export_dir / model))
    clf.enroll_folder(glyph_files / "classes")
    queries = sorted((glyph_files / "queries").glob("*.png"))
    return queries, clf.predict([str(q) for q in queries]), clf.predict_proba([str(q) for q in queries])
