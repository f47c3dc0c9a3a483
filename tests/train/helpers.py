"""Small fabricated data sets for the training tests."""

from __future__ import annotations

import io
import os
import zipfile
import zlib
from pathlib import Path

import numpy as np

from anil_edge.data.image_set import ImageSet
from anil_edge.runtime.metadata import Preprocessing
from tests.synthetic import block_glyphs

OMNI_PREP = Preprocessing((28, 28), 1, (0.0,), (1.0,), invert=True, resize="lanczos")


def glyph_set(n_classes: int = 24, per_class: int = 6, n_groups: int = 6, seed: int = 0) -> ImageSet:
    """Block glyphs as an ImageSet; class c belongs to group c % n_groups."""
    images, labels = block_glyphs(n_classes, per_class, seed=seed)
    return ImageSet(images[..., None], labels.astype(np.int64), tuple(f"glyph{c:03d}" for c in range(n_classes)),
                    tuple(f"group{c % n_groups}" for c in range(n_classes)))


def png_bytes(pixels: np.ndarray) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def big_glyph(seed: int, size: int = 105) -> np.ndarray:
    """A 105×105 dark-on-white glyph, as Omniglot's files are."""
    from PIL import Image

    image, _ = block_glyphs(1, 1, seed=seed)
    return np.asarray(Image.fromarray(image[0]).resize((size, size), Image.NEAREST))


def write_omniglot_zip(path: Path, top: str, alphabets: dict[str, int], drawers: int = 3) -> Path:
    """A zip in Omniglot's layout: top/<Alphabet>/characterNN/<drawer>_<nn>.png."""
    with zipfile.ZipFile(path, "w") as archive:
        for alphabet, n_chars in alphabets.items():
            for c in range(1, n_chars + 1):
                for d in range(1, drawers + 1):
                    seed = zlib.crc32(f"{alphabet}{c}{d}".encode())
                    name = f"{top}/{alphabet}/character{c:02d}/{c:04d}_{d:02d}.png"
                    archive.writestr(name, png_bytes(big_glyph(seed)))
    return path


def write_folder(root: Path, classes: dict[str, int], size: int = 40, rgb: bool = False) -> Path:
    """An image folder: root/<class>/<n>.png (a class name may hold a '/': a group level)."""
    from PIL import Image

    for k, (name, count) in enumerate(classes.items()):
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(count):
            pixels = big_glyph(k * 100 + i, size)
            image = Image.fromarray(pixels).convert("RGB" if rgb else "L")
            image.save(root / name / f"{i}.png")
    return root


def shared_omniglot() -> list[Path]:
    """The real Omniglot minimal splits from ../shared (or $ANIL_EDGE_OMNIGLOT), if present."""
    here = Path(os.environ.get("ANIL_EDGE_OMNIGLOT", ""))
    candidates = [here] if str(here) not in ("", ".") else []
    start = Path(__file__).resolve()
    candidates += [p / "shared" / "data" / "omniglot" for p in start.parents]
    for folder in candidates:
        zips = sorted(folder.glob("images_background_small*.zip")) if folder.is_dir() else []
        if zips:
            return zips
    return []


def tiny_config(out, **changes):
    """A TrainConfig for a seconds-long training run into ``out`` (fields in ``changes`` win)."""
    from anil_edge.train.config import TrainConfig

    base = dict(ways=3, shots=1, queries=2, hidden=8, blocks=2, meta_batch=2, iterations=6, eval_every=3,
                eval_tasks=5, checkpoint_every=2, rotations=True, augment=True, progress=False, threads=1,
                out_dir=str(out), device="cpu")
    return TrainConfig(**{**base, **changes})


def small_split():
    """24 glyph classes of 5 images in 6 groups, split 0.6/0.2/0.2 by group: what the training
    tests train on."""
    from anil_edge.data.splits import split_by_group

    return split_by_group(glyph_set(n_classes=24, per_class=5, n_groups=6), validation=0.2, test=0.2, seed=0)


def folder_config(out, data, **changes):
    """:func:`tiny_config` for a folder data set at ``data`` (fields in ``changes`` win)."""
    return tiny_config(out, **{"dataset": "folder", "data": (str(data),), "input_size": 28, "eval_every": 2,
                               "eval_tasks": 4, **changes})


def randomise_bn(module, mean: float = 0.2, bias: bool = False) -> None:
    """BatchNorm running statistics unlike a fresh layer's (means in ±``mean``, variances in
    [0.5, 2]; with ``bias``, shifted biases too), so that eval-mode BatchNorm matters."""
    import torch

    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                m.running_mean.uniform_(-mean, mean)
                m.running_var.uniform_(0.5, 2.0)
                if bias:
                    m.bias.uniform_(-0.2, 0.2)
