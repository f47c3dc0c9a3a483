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

from .helpers import EXAMPLES, npm_install

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


def test_an_export_interrupted_mid_commit_is_refused_until_completed(export_dir, glyph_files, tmp_path):
    """A commit journal in the folder: Node cannot finish it, so it says how, and does not mix files."""
    out = _copy(export_dir, tmp_path)
    staging = out / ".anil-edge-export-999999999-abc"
    staging.mkdir()
    moves = []  # an export's own journal (format 2): its model and sidecar, staged, with their hashes
    for name in ("model.onnx", "model.json"):
        (staging / name).write_bytes((out / name).read_bytes())
        moves.append([name, name, __import__("hashlib").sha256((staging / name).read_bytes()).hexdigest()])
    (staging / "COMMIT.json").write_text(json.dumps({"version": 2, "moves": moves, "remove": []}))
    _refused(node(out, glyph_files / "classes", glyph_files / "queries"), "was interrupted", "anil-edge info")
    from anil_edge.runtime.file_set import complete_interrupted

    complete_interrupted(out)  # what `anil-edge info` (any Python reader) does
    assert node(out, glyph_files / "classes", glyph_files / "queries").returncode == 0


def test_an_empty_query_folder_is_refused(export_dir, glyph_files, tmp_path):
    (tmp_path / "none").mkdir()
    _refused(node(export_dir, glyph_files / "classes", tmp_path / "none"), "no query images")


def test_a_truncated_png_names_the_file(export_dir, glyph_files, tmp_path):
    data = (glyph_files / "queries" / "q01.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    _refused(node(export_dir, glyph_files / "classes", tmp_path / "cut.png"), "cut.png", "truncated, corrupted or unsupported")


def test_a_png_that_declares_a_huge_size_is_refused_before_decoding(export_dir, glyph_files, tmp_path):
    """150 bytes declaring 6000×6000, beyond the client's stated bound (4096×4096: ~1.6 GB
    resident, as its preprocessing graph resizes at full size): refused from the header, not
    after 3 GB of decoding and resizing."""
    header = struct.pack(">IIBBBBB", 6000, 6000, 8, 0, 0, 0, 0)
    chunk = lambda kind, body: struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))  # noqa: E731
    (tmp_path / "bomb.png").write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64)))
    _refused(node(export_dir, glyph_files / "classes", tmp_path / "bomb.png"), "bomb.png", "declares 6000x6000", "downscale")


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


@pytest.mark.parametrize("suffix", [".jpg", ".png"])
def test_exif_orientation_is_applied_as_in_python(export_dir, glyph_files, tmp_path, suffix):
    """Each of the 8 EXIF orientations, stored as a camera would (JPEG APP1, PNG eXIf): the
    client turns the image upright, so its answer equals that for the upright file."""
    from PIL import Image, ImageOps

    upright = Image.open(next((glyph_files / "queries").glob("*.png"))).convert("RGB")
    upright.save(tmp_path / f"0{suffix}", quality=100, subsampling=0)
    inverse = {2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180, 4: Image.Transpose.FLIP_TOP_BOTTOM,
               5: Image.Transpose.TRANSPOSE, 6: Image.Transpose.ROTATE_90, 7: Image.Transpose.TRANSVERSE,
               8: Image.Transpose.ROTATE_270}
    for code, turn in inverse.items():
        exif = Image.Exif()
        exif[0x0112] = code
        stored = upright.transpose(turn)
        assert ImageOps.exif_transpose(_with_exif(stored, exif)).tobytes() == upright.tobytes()  # PIL's reading
        stored.save(tmp_path / f"{code}{suffix}", exif=exif.tobytes(), quality=100, subsampling=0)
    result = node(export_dir, glyph_files / "classes", *sorted(tmp_path.iterdir()))
    assert result.returncode == 0, result.stderr
    answers = [json.loads(line) for line in result.stdout.splitlines()]
    reference = answers[0]["probabilities"]
    # Measured: ≤ 1.5e-6 (JPEG at quality 100, 4:4:4, re-encodes a turned image almost exactly);
    # ignoring the orientation moves the test model's probabilities by 2.5e-4 .. 7e-4.
    gaps = [max(abs(a - b) for a, b in zip(answer["probabilities"], reference)) for answer in answers[1:]]
    assert max(gaps) <= 2e-5, gaps


def _with_exif(image, exif):
    image = image.copy()
    image.info["exif"] = exif.tobytes()
    image.getexif().update(exif)
    return image


def test_a_file_that_is_no_image_is_refused(export_dir, glyph_files, tmp_path):
    (tmp_path / "notes.png").write_text("hello")
    _refused(node(export_dir, glyph_files / "classes", tmp_path / "notes.png"), "notes.png", "not an image this client reads")


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


def test_a_model_file_instead_of_its_folder_is_taken_or_refused_in_one_line(export_dir, glyph_files, tmp_path):
    """model.onnx given where the folder is expected (as the Python commands take it): a raw ENOTDIR before."""
    taken = node(export_dir / "model.onnx", glyph_files / "classes", glyph_files / "queries")
    assert taken.returncode == 0, taken.stderr
    assert taken.stdout == node(export_dir, glyph_files / "classes", glyph_files / "queries").stdout
    _refused(node(export_dir / "model.json", glyph_files / "classes", glyph_files / "queries"),
             "model.json is a file, not a model folder")


def test_a_bmp_this_client_cannot_decode_is_refused_naming_the_file(export_dir, glyph_files, tmp_path):
    """An RLE-compressed BMP (Pillow reads it; this client reads uncompressed BMPs): one line that
    names the file, the kind, and what to do, rather than a skip or a wrong image."""
    width, height = 4, 2
    pixels = b"\x04\x01\x00\x00" * height + b"\x00\x01"  # RLE8 runs, end of each line, end of bitmap
    header = struct.pack("<IiiHHIIiiII", 40, width, height, 1, 8, 1, len(pixels), 2835, 2835, 2, 0)
    palette = b"\x00\x00\x00\x00\xff\xff\xff\x00"
    offset = 14 + len(header) + len(palette)
    bmp = b"BM" + struct.pack("<IHHI", offset + len(pixels), 0, 0, offset) + header + palette + pixels
    queries = tmp_path / "q"
    queries.mkdir()
    (queries / "rle.bmp").write_bytes(bmp)
    _refused(node(export_dir, glyph_files / "classes", queries), "rle.bmp", "compression 1", "save it as PNG")
