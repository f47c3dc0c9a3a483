"""A complete export directory (what ``anil-edge export`` writes) for the example clients."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

EXAMPLES = Path(__file__).parents[2] / "examples"


@pytest.fixture(scope="session")
def export_dir(model_path, tmp_path_factory):
    """model.onnx and model.int8.onnx, their head graphs, pixel-input backbones and model.json,
    for the tiny test model, with open-set thresholds calibrated on glyph classes."""
    pytest.importorskip("onnx")
    from anil_edge.export.deployment_files import write_deployment_files, write_sidecar
    from anil_edge.export.open_set_calibration import add_calibration
    from anil_edge.export.quantize import quantize_int8
    from anil_edge.runtime import Backbone
    from tests.train.helpers import glyph_set

    folder = tmp_path_factory.mktemp("export")
    model, int8 = folder / "model.onnx", folder / "model.int8.onnx"
    model.write_bytes(model_path.read_bytes())
    calibration_classes = glyph_set(n_classes=20, per_class=6, seed=3)
    add_calibration(model, calibration_classes)
    quantize_int8(model, int8, Backbone(model).preprocess(calibration_classes.images))
    add_calibration(int8, calibration_classes)
    files = write_deployment_files(model, lambda suffix: folder / f"model.{suffix}", pixels=True, int8_path=int8)
    write_sidecar(folder / "model.json", Backbone(model).metadata, {"backbone": model, "backbone_int8": int8, **files},
                  {"backbone": "model.onnx", "backbone_int8": "model.int8.onnx", **{k: v.name for k, v in files.items()}},
                  int8_meta=Backbone(int8).metadata)
    return folder


@pytest.fixture(scope="session")
def glyph_files(tmp_path_factory):
    """classes/<label>/0.png (one support image each) and queries/*.png, 28×28 grayscale PNGs."""
    from PIL import Image

    from tests.synthetic import block_glyphs

    root = tmp_path_factory.mktemp("images")
    images, labels = block_glyphs(4, 4, seed=21)
    for c in range(4):
        (root / "classes" / f"class{c}").mkdir(parents=True)
        Image.fromarray(images[labels == c][0]).save(root / "classes" / f"class{c}" / "0.png")
        (root / "queries").mkdir(exist_ok=True)
        for k in range(1, 4):
            Image.fromarray(images[labels == c][k]).save(root / "queries" / f"q{c}{k}.png")
    return root


def npm_install(folder: Path) -> None:
    """``npm ci`` once (node_modules is not committed); onnxruntime-node's CPU binaries ship in
    its package, so its download step is skipped."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.skip("node and npm are needed for the JavaScript clients; none found on PATH")
    if not (folder / "node_modules").is_dir():
        env = {**__import__("os").environ, "npm_config_onnxruntime_node_install": "skip"}
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=folder, check=True, env=env,
                       capture_output=True, timeout=600)


def python_predictions(export_dir: Path, glyph_files: Path, model: str = "model.onnx"):
    from anil_edge.runtime import Backbone, FewShotClassifier

    clf = FewShotClassifier(Backbone(export_dir / model))
    clf.enroll_folder(glyph_files / "classes")
    queries = sorted((glyph_files / "queries").glob("*.png"))
    return queries, clf.predict([str(q) for q in queries]), clf.predict_proba([str(q) for q in queries])


@pytest.fixture
def reference(export_dir, glyph_files):
    return python_predictions(export_dir, glyph_files)


__all__ = ["EXAMPLES", "np", "npm_install"]
