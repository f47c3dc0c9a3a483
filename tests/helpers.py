"""Plain helpers every test folder shares: the tiny fixture model's settings, synthetic classes,
a subprocess with torch blocked, metadata rewriting and fault injection. Fixtures are in
``conftest.py``; folder-specific helpers in each folder's ``helpers.py``."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np

from anil_edge.runtime.adaptation import Adaptation
from anil_edge.runtime.metadata import DataProvenance, LearnedHead, Preprocessing, TrainingInfo
from tests.synthetic import block_glyphs

WAYS, DIM = 5, 32
TINY_ADAPTATION = Adaptation(adaptation_lr=0.5, adaptation_steps=5, head_init="learned")
TINY_TRAINING = TrainingInfo(WAYS, 1, DataProvenance("tiny"))


def tiny_head(dim: int = DIM) -> LearnedHead:
    rng = np.random.default_rng(1)
    return LearnedHead(weight=rng.normal(0, 0.1, (WAYS, dim)).astype(np.float32),
                       bias=rng.normal(0, 0.1, WAYS).astype(np.float32))


GRAY = Preprocessing(input_size=(28, 28), channels=1, mean=(0.1,), std=(0.5,), invert=True, resize="lanczos")


glyphs = block_glyphs  # tiny synthetic classes (tests/synthetic.py) for the runtime and export tests


BLOCKER = """
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        root = name.split(".")[0]
        if root in ("torch", "torchvision", "learn2learn", "onnx", "onnxscript"):
            raise ImportError("blocked for this test: " + name)
sys.meta_path.insert(0, Block())
"""


def run_isolated(code: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", BLOCKER + textwrap.dedent(code)], capture_output=True, text=True, timeout=120
    )


def rewrite(model_path, tmp_path, mutate) -> str:
    """A copy of the model whose metadata_props dict went through ``mutate``."""
    import onnx

    model = onnx.load(str(model_path))
    props = {p.key: p.value for p in model.metadata_props}
    mutate(props)
    del model.metadata_props[:]
    for key, value in props.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    out = tmp_path / "rewritten.onnx"
    onnx.save(model, str(out))
    return out


def atomic_write_with(replace_write):
    """``anil_edge.atomic.atomic_write`` whose handle's ``write`` is ``replace_write(real_write)``:
    a fault injected inside the atomic writer (a crash or a failing disk mid-write)."""
    import anil_edge.atomic

    real = anil_edge.atomic.atomic_write

    def patched(path):
        cm = real(path)

        class Wrapper:
            def __enter__(self):
                handle = cm.__enter__()
                handle.write = replace_write(handle.write)
                return handle

            def __exit__(self, *exc):
                return cm.__exit__(*exc)

        return Wrapper()

    return patched


def readme_snippet(heading: str) -> str:
    """The first ```python block after ``heading`` in the README."""
    text = (Path(__file__).parents[1] / "README.md").read_text()
    section = text[text.index(heading):]
    match = re.search(r"```python\n(.*?)```", section, re.S)
    assert match, f"no python block after {heading!r} in the README"
    return match.group(1)


def readme_example_files(model_path, folder) -> None:
    """What the README's runtime example opens, in ``folder``: a calibrated
    runs/photos/model.onnx (as anil-edge export writes it), two JPEGs, a class folder and a
    query photo."""
    from PIL import Image

    from anil_edge.export.open_set_calibration import add_calibration
    from tests.train.helpers import glyph_set, write_folder

    model = folder / "runs" / "photos" / "model.onnx"
    model.parent.mkdir(parents=True)
    model.write_bytes(model_path.read_bytes())
    add_calibration(model, glyph_set(n_classes=20, per_class=6, seed=3))
    rng = np.random.default_rng(0)
    (folder / "shelf").mkdir()
    for name in ("mug1.jpg", "mug2.jpg", "shelf/photo.jpg"):
        Image.fromarray(rng.integers(0, 256, (40, 30, 3), dtype=np.uint8)).save(folder / name)
    write_folder(folder / "my_products", {"plate": 2, "cup": 1}, size=28)


EMOJI = {  # code -> (short name, category, subcategory): a fabricated emoji.json's entries
    "1F600": ("grinning", "Smileys & Emotion", "face-smiling"),
    "1F603": ("smiley", "Smileys & Emotion", "face-smiling"),
    "1F604": ("smile", "Smileys & Emotion", "face-smiling"),
    "1F436": ("dog", "Animals & Nature", "animal-mammal"),
    "1F431": ("cat", "Animals & Nature", "animal-mammal"),
    "1F42D": ("mouse", "Animals & Nature", "animal-mammal"),
    "1F34E": ("apple", "Food & Drink", "food-fruit"),
    "1F34C": ("banana", "Food & Drink", "food-fruit"),
    "1F3FB": ("skin-tone-2", "Component", "skin-tone"),
}


def emoji_packages(root: Path, vendors=("google", "twitter", "apple"), size: int = 16, missing=()) -> list[Path]:
    """emoji-datasource-<vendor> folders as the npm packages unpack (emoji.json, img/<vendor>/64/):
    each emoji a coloured RGBA disc whose colour depends on the emoji and (slightly) the vendor;
    ``missing`` holds (vendor, code) pairs left undrawn."""
    import json

    from PIL import Image

    folders = []
    for v, vendor in enumerate(vendors):
        folder = root / vendor
        images = folder / "img" / vendor / "64"
        images.mkdir(parents=True)
        entries = []
        for i, (code, (short, category, sub)) in enumerate(EMOJI.items()):
            entries.append({"unified": code, "image": f"{code.lower()}.png", "short_name": short, "category": category,
                            "subcategory": sub, f"has_img_{vendor}": (vendor, code) not in missing,
                            "skin_variations": {"1F3FB": {"unified": f"{code}-1F3FB", "image": "x.png"}}})
            if (vendor, code) in missing:
                continue
            yy, xx = np.mgrid[:size, :size]
            disc = (yy - size / 2) ** 2 + (xx - size / 2) ** 2 < (size / 2.5) ** 2
            rgba = np.zeros((size, size, 4), np.uint8)
            rgba[disc] = [(37 * i) % 256, (91 * i + 20 * v) % 256, (53 * i) % 256, 255]
            Image.fromarray(rgba).save(images / f"{code.lower()}.png")
        (folder / "emoji.json").write_text(json.dumps(entries))
        folders.append(folder)
    return folders


def readme_heading(heading: str) -> str:
    """The README's section under ``heading`` (to the next heading of its level)."""
    text = (Path(__file__).parents[1] / "README.md").read_text()
    section = text[text.index(heading) + len(heading):]
    following = re.search(r"^## ", section, re.M)
    return section[:following.start()] if following else section


def readme_commands(heading: str) -> list[str]:
    """The commands of the first ```sh block after ``heading`` (comments dropped, one per line)."""
    text = (Path(__file__).parents[1] / "README.md").read_text()
    section = text[text.index(heading):]
    match = re.search(r"```sh\n(.*?)```", section, re.S)
    assert match, f"no sh block after {heading!r} in the README"
    return [line.split("  #")[0].strip() for line in match.group(1).splitlines() if line.strip()]


DISC_COLOURS = [(220, 30, 30), (30, 160, 40), (30, 60, 220), (230, 200, 20)]
DISC_SIZES = [(60, 80), (90, 64), (120, 160), (64, 64), (45, 100)]  # (H, W): landscape, portrait, square


def disc_photos(seed: int = 0, per_class: int = 3):
    """[(PIL image, class)]: a coloured disc per class on a noisy light background, at sizes and
    aspect ratios the model's centre crop must handle."""
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
