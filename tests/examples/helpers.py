"""Plain helpers of the example-client tests (fixtures are in conftest.py)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).parents[2] / "examples"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


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


DISC_COLOURS = [(220, 30, 30), (30, 160, 40), (30, 60, 220), (230, 200, 20)]
DISC_SIZES = [(60, 80), (90, 64), (120, 160), (64, 64), (45, 100)]  # (H, W): landscape, portrait, square


def disc_photos(seed: int = 0, per_class: int = 3):
    """[(PIL image, class)]: a coloured disc per class on a noisy light background, at sizes and
    aspect ratios the model's centre crop must handle."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    photos = []
    for c, colour in enumerate(DISC_COLOURS):
        for k in range(per_class):
            h, w = DISC_SIZES[(c + k) % len(DISC_SIZES)]
            img = rng.integers(190, 256, (h, w, 3)).astype(np.uint8)
            yy, xx = np.mgrid[:h, :w]
            r = min(h, w) // 3
            img[(yy - h // 2 - rng.integers(-3, 4)) ** 2 + (xx - w // 2 - rng.integers(-3, 4)) ** 2 < r * r] = colour
            photos.append((Image.fromarray(img), c))
    return photos
