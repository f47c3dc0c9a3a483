"""Deployed = trained in every client: ordinary images of other sizes, shapes and formats (PNG,
JPEG, transparency) enrolled and classified by the Python runtime, the Node client and the
browser page. Each client decodes the file with its platform's decoder and hands RGBA at the
image's own size to model.preprocess.onnx, which reproduces the runtime's decoding exactly."""

from __future__ import annotations

import base64
import json
import os
import subprocess

import numpy as np
import pytest

from tests.tolerances import CLIENT_TERMS, assert_f32_close

from .helpers import CHROMIUM, EXAMPLES, npm_install

# Each client's embedding of each query must be the Python runtime's within the float32 rounding
# of another onnxruntime build's convolutions (CLIENT_TERMS): a decoding that differs by one level
# in one pixel moves an embedding far more. Both clients decode as Pillow does: PNG exactly, JPEG
# with libjpeg-turbo (Chromium's own decoder; sharp in Node, which replaced jpeg-js: its IDCT and
# chroma upsampling moved photo pixels by 2.8 levels on average). Probabilities: within 1e-3.
PROBABILITY_TOLERANCE = 1e-3
SHAPES = [(105, 105), (60, 40), (37, 80), (150, 100), (28, 28), (200, 61)]  # (H, W): off-size, both orientations


@pytest.fixture(scope="module")
def offsize_files(tmp_path_factory):
    """4 classes of block glyphs, each image scaled to another (H, W) and saved as grayscale PNG,
    RGB JPEG or RGBA PNG with a transparent background."""
    from PIL import Image

    from tests.synthetic import block_glyphs

    root = tmp_path_factory.mktemp("offsize")
    images, labels = block_glyphs(4, 4, seed=21)
    for c in range(4):
        for k, glyph in enumerate(images[labels == c]):
            h, w = SHAPES[(c + k) % len(SHAPES)]
            big = Image.fromarray(glyph).resize((w, h), Image.Resampling.BICUBIC)
            kind = (c + 2 * k) % 3
            folder = root / ("classes" if k == 0 else "queries") / (f"class{c}" if k == 0 else "")
            folder.mkdir(parents=True, exist_ok=True)
            name = folder / f"{c}{k}.{'jpg' if kind == 1 else 'png'}"
            if kind == 0:
                big.save(name)
            elif kind == 1:
                Image.merge("RGB", [big, big.point(lambda v: v * 0.9), big]).save(name, quality=90)
            else:  # dark ink on a transparent background
                ink = np.asarray(big)
                rgba = np.stack([np.zeros_like(ink)] * 3 + [255 - ink], axis=-1)
                Image.fromarray(rgba, "RGBA").save(name)
    return root


def _python(export_dir, root):
    from anil_edge.runtime import Backbone, FewShotClassifier

    backbone = Backbone(export_dir / "model.onnx")
    clf = FewShotClassifier(backbone)
    clf.enroll_folder(root / "classes")
    queries = sorted((root / "queries").iterdir())
    files = [str(q) for q in queries]
    return queries, clf.predict(files), clf.predict_proba(files), backbone.embed(files)


def _check(rows, python):
    queries, predictions, probabilities, embeddings = python
    assert [r["label"] for r in rows] == [p.label for p in predictions]
    for row, query, expected in zip(rows, queries, embeddings):
        assert_f32_close(row["embedding"], expected, terms=CLIENT_TERMS, what=f"{query.name}'s embedding")
    worst = float(np.abs(np.asarray([r["probabilities"] for r in rows]) - probabilities).max())
    assert worst <= PROBABILITY_TOLERANCE


def _node_rows(export_dir, root) -> list[dict]:
    """The Node client's answers (with embeddings) for root/classes and root/queries."""
    npm_install(EXAMPLES / "node")
    result = subprocess.run(["node", "enroll_predict.js", str(export_dir), str(root / "classes"), str(root / "queries"),
                             "--json", "--embeddings"], cwd=EXAMPLES / "node", capture_output=True, text=True,
                            timeout=180)
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


def _data_url(path) -> str:
    mime = "image/jpeg" if path.suffix == ".jpg" else "image/png"
    return f"data:{mime};base64," + base64.b64encode(path.read_bytes()).decode()


def _drive(url, case: dict, tmp_path) -> list:
    """Drive the browser page with ``case`` (drive.js); its results, after checking it raised nothing."""
    if CHROMIUM is None:
        pytest.skip("Chromium is needed for the browser test (.ci/run installs Debian's chromium package)")
    npm_install(EXAMPLES / "web")
    (tmp_path / "case.json").write_text(json.dumps(case))
    result = subprocess.run(["node", "drive.js", url, str(tmp_path / "case.json"), str(tmp_path / "page.png")],
                            cwd=EXAMPLES / "web", capture_output=True, text=True, timeout=240,
                            env={**os.environ, "CHROMIUM": CHROMIUM})
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["errors"] == [], out
    return out["results"]


def _browser_rows(url, root, queries, tmp_path) -> list[dict]:
    classes = {d.name: [_data_url(p) for p in sorted(d.iterdir())] for d in sorted((root / "classes").iterdir())}
    return _drive(url, {"classes": classes, "queries": [_data_url(q) for q in queries]}, tmp_path)


def test_node_agrees_with_python_on_off_size_png_and_jpeg(export_dir, offsize_files):
    python = _python(export_dir, offsize_files)
    rows = _node_rows(export_dir, offsize_files)
    assert [r["image"] for r in rows] == [str(q) for q in python[0]]
    _check(rows, python)


def test_the_browser_agrees_with_python_on_off_size_png_and_jpeg(server, export_dir, offsize_files, tmp_path):
    python = _python(export_dir, offsize_files)
    _check(_browser_rows(server, offsize_files, python[0], tmp_path), python)


@pytest.fixture(scope="module")
def photo_files(tmp_path_factory):
    """classes/<colour>/0.jpg (one photo each) and queries/ of JPEG and PNG photos of other sizes."""
    from tests.helpers import disc_photos

    root = tmp_path_factory.mktemp("photos")
    for i, (image, c) in enumerate(disc_photos(seed=9, per_class=3)):
        first = i % 3 == 0
        folder = root / "classes" / f"colour{c}" if first else root / "queries"
        folder.mkdir(parents=True, exist_ok=True)
        image.save(folder / f"{c}{i}.{'jpg' if first or i % 2 else 'png'}", quality=92)
    return root


def test_node_agrees_with_python_on_a_photo_model(photo_export_dir, photo_files):
    """An RGB EfficientNet-Lite0 model (bicubic, centre crop, mean/std from its pretrained config)."""
    _check(_node_rows(photo_export_dir, photo_files), _python(photo_export_dir, photo_files))


def test_the_browser_agrees_with_python_on_a_photo_model(photo_server, photo_export_dir, photo_files, tmp_path):
    python = _python(photo_export_dir, photo_files)
    _check(_browser_rows(photo_server, photo_files, python[0], tmp_path), python)


def test_the_browser_page_enrolls_uploaded_photos_and_classifies_a_photo(photo_server, photo_export_dir, photo_files,
                                                                        tmp_path):
    """The page's own inputs: example photos per class (file upload and the camera input), then a
    photo as the query; the answer shown is the Python runtime's."""
    queries, predictions, _, _ = _python(photo_export_dir, photo_files)
    uploads = {d.name: [str(p) for p in sorted(d.iterdir())] for d in sorted((photo_files / "classes").iterdir())}
    for camera in (False, True):
        [answer] = _drive(photo_server, {"uploads": uploads, "camera": camera, "query_file": str(queries[-1])}, tmp_path)
        assert answer == f"→ {predictions[-1].label}", answer


def _format_kinds(glyph, rng):
    """One query image per kind of file Python reads, each the same ink on a light background:
    {file name: save function}."""
    from PIL import Image

    gray = Image.fromarray(glyph)
    rgb = Image.merge("RGB", [gray, gray.point(lambda v: v * 0.8), gray.point(lambda v: 255 - (255 - v) // 2)])
    keyed = np.asarray(gray).copy()
    keyed[keyed == keyed.max()] = 255  # the background: the tRNS key
    return {
        "gray-trns.png": lambda p: Image.fromarray(keyed).save(p, transparency=255),
        "rgb-trns.png": lambda p: Image.fromarray(np.stack([keyed] * 3, -1)).save(p, transparency=(255, 255, 255)),
        "palette.png": lambda p: rgb.quantize(16).save(p, transparency=0),
        "la.png": lambda p: Image.merge("LA", [gray, gray.point(lambda v: 255 - v // 2)]).save(p),
        "rgb24.bmp": lambda p: rgb.save(p),
        "palette8.bmp": lambda p: rgb.quantize(32).save(p),
        "frames.gif": lambda p: rgb.quantize(64).save(p, save_all=True, append_images=[gray.convert("P")],
                                                       transparency=0),
        "lossless.webp": lambda p: rgb.save(p, lossless=True),
        "lossy.webp": lambda p: rgb.save(p, quality=80),
        "rgb.tif": lambda p: rgb.save(p),
        "cmyk.jpg": lambda p: rgb.convert("CMYK").save(p, quality=92),
    }


@pytest.fixture(scope="module")
def format_files(tmp_path_factory):
    """classes/<c>/0.png and a query of every kind above per class; a class folder that is a
    symlink, and a symlink loop inside a class folder (walked by neither client)."""
    from PIL import Image

    from tests.synthetic import block_glyphs

    root = tmp_path_factory.mktemp("formats")
    images, labels = block_glyphs(4, 3, seed=5)
    rng = np.random.default_rng(0)
    (root / "queries").mkdir()
    (root / "elsewhere" / "class3").mkdir(parents=True)
    for c in range(4):
        folder = root / "classes" / f"class{c}" if c < 3 else root / "elsewhere" / "class3"
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(images[labels == c][0]).save(folder / "0.png")
        kinds = _format_kinds(images[labels == c][1], rng)
        for name, save in kinds.items():
            save(root / "queries" / f"{c}-{name}")
    (root / "classes" / "class3").symlink_to(root / "elsewhere" / "class3", target_is_directory=True)
    (root / "classes" / "class0" / "loop").symlink_to(root / "classes", target_is_directory=True)
    return root


def test_node_reads_every_format_python_reads_and_walks_folders_by_the_same_rule(export_dir, format_files):
    """Grayscale and RGB tRNS, palette and LA PNGs, BMP (24-bit, 8-bit palette), a multi-frame
    GIF, WebP (lossless, lossy), TIFF and CMYK JPEG: both clients read them alike (labels equal,
    embeddings within float32 rounding, probabilities within 1e-3); a symlinked class folder is
    followed and a symlink loop inside one is not walked, by both."""
    python = _python(export_dir, format_files)
    assert len(python[0]) == 4 * 11
    rows = _node_rows(export_dir, format_files)
    assert [os.path.basename(r["image"]) for r in rows] == [q.name for q in python[0]]
    _check(rows, python)
