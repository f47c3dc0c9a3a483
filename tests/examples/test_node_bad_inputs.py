"""The Node client under bad input, as careful as the Python runtime: refused in one line that
names the file (exit 2), nothing silently skipped or silently wrong."""

from __future__ import annotations

import json
import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import pytest

from .conftest import EXAMPLES, npm_install

pytestmark = pytest.mark.bad_input


def node(*args) -> subprocess.CompletedProcess:
    folder = EXAMPLES / "node"
    npm_install(folder)
    return subprocess.run(["node", "enroll_predict.js", *map(str, args), "--json"], cwd=folder, capture_output=True,
                          text=True, timeout=120)


def _copy(export_dir: Path, tmp_path: Path) -> Path:
    out = tmp_path / "export"
    shutil.copytree(export_dir, out)
    return out


def _refused(result, *needles):
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("enroll_predict: error:")]
    assert len(lines) == 1 and all(n in lines[0] for n in needles), result.stderr


def test_a_head_graph_of_another_export_is_refused(export_dir, glyph_files, tmp_path):
    out = _copy(export_dir, tmp_path)
    graph = out / "model.head_adapt.onnx"
    graph.write_bytes(graph.read_bytes() + b"\0")  # any other bytes: not the file model.json lists
    _refused(node(out, glyph_files / "classes", glyph_files / "queries"), str(graph), "is not the file model.json lists")


def test_an_empty_query_folder_is_refused(export_dir, glyph_files, tmp_path):
    (tmp_path / "none").mkdir()
    _refused(node(export_dir, glyph_files / "classes", tmp_path / "none"), "no query images")


def test_a_truncated_png_names_the_file(export_dir, glyph_files, tmp_path):
    data = (glyph_files / "queries" / "q01.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    _refused(node(export_dir, glyph_files / "classes", tmp_path / "cut.png"), "cut.png", "truncated or corrupted")


def test_a_png_that_declares_a_huge_size_is_refused_before_decoding(export_dir, glyph_files, tmp_path):
    """150 bytes declaring 30000×30000: refused from the header, not after 3.6 GB of decoding."""
    header = struct.pack(">IIBBBBB", 30000, 30000, 8, 0, 0, 0, 0)
    chunk = lambda kind, body: struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))  # noqa: E731
    (tmp_path / "bomb.png").write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64)))
    _refused(node(export_dir, glyph_files / "classes", tmp_path / "bomb.png"), "bomb.png", "declares 30000x30000")


def test_jpegs_and_nested_images_are_enrolled_not_skipped(export_dir, glyph_files, tmp_path):
    from PIL import Image

    classes = tmp_path / "classes"
    shutil.copytree(glyph_files / "classes", classes)
    first = sorted(classes.iterdir())[0]
    image = Image.open(next(first.glob("*.png")))
    image.convert("RGB").save(first / "photo.jpg", quality=95)
    (first / "side").mkdir()
    image.save(first / "side" / "again.png")
    result = node(export_dir, classes, glyph_files / "queries")
    assert result.returncode == 0, result.stderr
    assert "enrolled 4 classes from 6 images" in result.stderr


def test_a_file_that_is_no_image_is_refused(export_dir, glyph_files, tmp_path):
    (tmp_path / "notes.png").write_text("hello")
    _refused(node(export_dir, glyph_files / "classes", tmp_path / "notes.png"), "notes.png", "not a PNG or JPEG")


def test_a_fixed_batch_export_embeds_one_image_at_a_time(export_dir, glyph_files, tmp_path):
    """The mobile setting (--fixed-batch 1): the same answers as the dynamic-batch model."""
    import hashlib

    from anil_edge.export.mobile import fix_batch

    out = _copy(export_dir, tmp_path)
    fix_batch(out / "model.pixels.onnx", 1)
    sidecar = json.loads((out / "model.json").read_text())
    entry = sidecar["files"]["backbone_pixels"]
    entry["sha256"] = hashlib.sha256((out / "model.pixels.onnx").read_bytes()).hexdigest()
    entry["inputs"]["pixels"][1][0] = 1
    (out / "model.json").write_text(json.dumps(sidecar))
    fixed = node(out, glyph_files / "classes", glyph_files / "queries")
    dynamic = node(export_dir, glyph_files / "classes", glyph_files / "queries")
    assert fixed.returncode == 0, fixed.stderr
    rows = lambda r: [json.loads(line) for line in r.stdout.splitlines()]  # noqa: E731
    assert [r["best_label"] for r in rows(fixed)] == [r["best_label"] for r in rows(dynamic)]
