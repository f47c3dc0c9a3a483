"""The offline default data set: Unicode glyphs rendered from the fonts matplotlib ships.

Each code point is a class (letters, digits and symbols that DejaVu Sans covers, visually
identical ones merged: Latin "A", Greek "Α" and Cyrillic "А" are one shape); its group — for
splits — is the first word of its Unicode name (LATIN, CYRILLIC, ARABIC, BRAILLE, BOX, ...),
so held-out classes come from scripts never seen in training. Instances differ in font
(DejaVu Sans / Serif / Mono, regular, bold, oblique), stroke width, a random affine map and an
elastic distortion — like handwriting, they are never pixel-identical. Deterministic for a seed,
rendered once (about a minute) and cached as a pickle-free ``.npz``.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import unicodedata
import zipfile
import zlib
from pathlib import Path

import numpy as np

from ..atomic import atomic_write
from ..cache import cache_folder
from ..errors import InputError, require
from .image_set import ImageSet

VERSION = 1
LOG = logging.getLogger(__name__)
FONTS = ("DejaVuSans.ttf", "DejaVuSans-Bold.ttf", "DejaVuSans-Oblique.ttf", "DejaVuSerif.ttf",
         "DejaVuSerif-Bold.ttf", "DejaVuSansMono.ttf")
CATEGORIES = ("Lu", "Ll", "Lo", "Nd", "Sm", "So")  # letters, digits, maths and other symbols
CANVAS, SIZE = 64, 28


def load_glyphs(*, instances: int = 20, seed: int = 0, max_classes: int = 0, cache_dir: str | None = None) -> ImageSet:
    """Every glyph class with ``instances`` renderings each, 28×28 dark ink on white.

    ``max_classes`` > 0 keeps a deterministic subset (for quick runs and tests).
    """
    folder = Path(cache_dir) if cache_dir else cache_folder()
    key = hashlib.sha256(f"{VERSION}-{instances}-{seed}-{max_classes}".encode()).hexdigest()[:16]
    path = folder / f"glyphs-{key}.npz"
    if path.is_file():
        cached = _read(path)
        if cached is not None:
            return cached
        path.unlink(missing_ok=True)  # truncated or corrupted (an interrupted copy, a full disk): render again
    LOG.info("rendering the embedded glyph data set (first use only: about 1-3 minutes on 2 cores; cached in %s)",
             folder)
    data = render_glyphs(instances=instances, seed=seed, max_classes=max_classes, progress=True)
    folder.mkdir(parents=True, exist_ok=True)
    with atomic_write(path) as handle:
        np.savez_compressed(handle, images=data.images, labels=data.labels, class_names=np.array(data.class_names),
                 groups=np.array(data.groups))
    return data


def render_glyphs(*, instances: int, seed: int, max_classes: int = 0, progress: bool = False) -> ImageSet:
    """Every class's ``instances`` renderings; ``progress``: a bar on a terminal (tqdm, when installed)."""
    fonts = _fonts()
    classes = _classes(fonts[0][1], fonts[0][0])
    if max_classes:
        keep = np.random.default_rng(seed).permutation(len(classes))[:max_classes]
        classes = [classes[i] for i in sorted(keep)]
    jobs = [(cp, [f for f, covered in fonts if cp in covered], instances, seed) for cp, _, _ in classes]
    workers = min(os.cpu_count() or 1, 8)
    import multiprocessing

    bar = _bar(len(jobs)) if progress else None
    if workers > 1 and len(jobs) > 50 and "fork" in multiprocessing.get_all_start_methods():
        with multiprocessing.get_context("fork").Pool(workers) as pool:  # workers only draw (PIL, scipy)
            rendered = [_tick(bar, r) for r in pool.imap(_render_class, jobs, chunksize=16)]
    else:
        rendered = [_tick(bar, _render_class(job)) for job in jobs]
    if bar is not None:
        bar.close()
    images = np.concatenate(rendered)[..., None] if rendered else np.zeros((0, SIZE, SIZE, 1), np.uint8)
    labels = np.repeat(np.arange(len(classes)), instances)
    return ImageSet(images, labels, tuple(n for _, n, _ in classes), tuple(g for _, _, g in classes))


def _bar(total: int):
    """A tqdm bar on a terminal (``disable=None``: none when stderr is not a TTY), or None."""
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    return tqdm(total=total, desc="rendering glyphs", unit="class", disable=None)


def _tick(bar, value):
    if bar is not None:
        bar.update(1)
    return value


def _render_class(job: tuple[int, list[str], int, int]) -> np.ndarray:
    """One class's instances (instances, 28, 28); its own RNG, so any worker split gives the same."""
    cp, usable, instances, seed = job
    rng = np.random.default_rng([seed, cp])
    return np.stack([_instance(chr(cp), usable[rng.integers(len(usable))], rng) for _ in range(instances)])


def _fonts() -> list[tuple[str, set[int]]]:
    matplotlib = require("matplotlib", "train")
    from fontTools.ttLib import TTFont

    folder = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
    return [(str(folder / f), set(TTFont(folder / f).getBestCmap())) for f in FONTS]


def _classes(covered: set[int], font: str) -> list[tuple[int, str, str]]:
    """(code point, name, group) for drawable, visually distinct glyphs of the base font."""
    seen, found = set(), []
    for cp in sorted(covered):
        ch = chr(cp)
        if unicodedata.category(ch) not in CATEGORIES or not unicodedata.name(ch, ""):
            continue
        shape = _canonical(ch, font)
        if shape is None or shape.tobytes() in seen:
            continue
        seen.add(shape.tobytes())
        name = unicodedata.name(ch)
        found.append((cp, f"U+{cp:04X} {name}", name.split()[0]))
    return found


def _canonical(ch: str, font: str) -> np.ndarray | None:
    """The glyph's plain binarised 28×28 shape (None if it draws almost nothing)."""
    ink = _draw(ch, font, 40, 0)
    if ink is None:
        return None
    small = _fit(ink, 0.0, 1.0, 0.0, (0.0, 0.0))
    binary = small < 128
    return binary if binary.sum() >= 6 else None


def _draw(ch: str, font: str, size: int, stroke: int) -> np.ndarray | None:
    """Ink (0..255, 255 = ink) cropped to the glyph's bounding box."""
    from PIL import Image, ImageDraw

    face = _face(font, size)
    canvas = Image.new("L", (CANVAS * 2, CANVAS * 2), 0)
    ImageDraw.Draw(canvas).text((CANVAS, CANVAS), ch, fill=255, font=face, anchor="mm", stroke_width=stroke,
                                stroke_fill=255)
    box = canvas.getbbox()
    if box is None or box[2] - box[0] < 2 and box[3] - box[1] < 2:
        return None
    return np.asarray(canvas.crop(box), dtype=np.uint8)


@functools.lru_cache(maxsize=256)
def _face(font: str, size: int):
    from PIL import ImageFont

    return ImageFont.truetype(font, size)


def _fit(ink: np.ndarray, angle: float, scale: float, shear: float, shift: tuple[float, float]) -> np.ndarray:
    """Ink scaled into a 20-pixel box, centred in 28×28 under an affine map; dark on white."""
    from PIL import Image

    h, w = ink.shape
    factor = 20.0 / max(h, w) * scale
    cos, sin = np.cos(angle), np.sin(angle)
    A = np.array([[cos, -sin + shear * cos], [sin, cos + shear * sin]]) * factor  # output = A @ input
    inv = np.linalg.inv(A)
    centre_out = np.array([SIZE / 2 + shift[0], SIZE / 2 + shift[1]])
    offset = np.array([w / 2, h / 2]) - inv @ centre_out
    img = Image.fromarray(ink).transform((SIZE, SIZE), Image.Transform.AFFINE,
                                         (*inv[0], offset[0], *inv[1], offset[1]), resample=Image.Resampling.BILINEAR)
    return 255 - np.asarray(img, dtype=np.uint8)


def _instance(ch: str, font: str, rng: np.random.Generator) -> np.ndarray:
    ink = _draw(ch, font, int(rng.integers(36, 48)), int(rng.integers(0, 2)))
    if ink is None:  # a font without this glyph's outline: fall back to the plain base font
        ink = _draw(ch, str(Path(font).with_name(FONTS[0])), 40, 0)
    if ink is None:
        raise InputError(f"no font of {FONTS} can draw {ch!r}")
    ink = _elastic(ink, rng)
    return _fit(ink, rng.uniform(-0.2, 0.2), rng.uniform(0.8, 1.1), rng.uniform(-0.2, 0.2),
                (rng.uniform(-1.5, 1.5), rng.uniform(-1.5, 1.5)))


def _elastic(ink: np.ndarray, rng: np.random.Generator, alpha: float = 3.0, sigma: float = 4.0) -> np.ndarray:
    """A smooth random displacement of the ink (Simard et al., 2003)."""
    from scipy.ndimage import gaussian_filter, map_coordinates

    h, w = ink.shape
    dx = gaussian_filter(rng.uniform(-1, 1, (h, w)), sigma) * alpha * sigma
    dy = gaussian_filter(rng.uniform(-1, 1, (h, w)), sigma) * alpha * sigma
    y, x = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
    return map_coordinates(ink.astype(np.float32), [y + dy, x + dx], order=1, mode="constant").astype(np.uint8)


def _read(path: Path) -> ImageSet | None:
    """The cached set, or None when the cache file is unreadable (it is then rebuilt)."""
    try:
        with np.load(path, allow_pickle=False) as z:
            return ImageSet(z["images"], z["labels"], tuple(str(s) for s in z["class_names"]),
                            tuple(str(s) for s in z["groups"]))
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, zlib.error, InputError):
        return None
