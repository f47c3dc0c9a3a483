"""Users' own data: a folder with one sub-folder of images per class.

``root/<class>/<image>`` — or, to group classes for group-wise splits,
``root/<group>/<class>/<image>`` (say, ``products/<brand>/<item>/``). Classes are sorted by name.

An image may name its source — who took or drew it, the camera, the shop — after the last
``@`` of its file name: ``mug/front@alice.jpg``, ``mug/side@bob.jpg``. When every image names
one, the set records them as drawers, so that validation, the export's calibration and
``train_tasks="deployment"`` take a task's support and query from different sources, as a
device meets them (someone enrolls, someone else asks).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..runtime.metadata import Preprocessing
from ..runtime.preprocess import is_image_name
from .decode import decode, stack
from .image_set import ImageSet


def load_image_folder(root: str | os.PathLike[str], prep: Preprocessing) -> ImageSet:
    """Every class folder under ``root`` (one or two levels deep) with its images."""
    root = Path(root)
    if not root.is_dir():
        raise InputError(f"{root}: no such folder (expected one sub-folder of images per class)")
    classes = _class_folders(root)
    if not classes:
        raise InputError(f"{root}: found no class folders with images (expected {root}/<class>/<image>.png)")
    pixels, labels, sources = [], [], []
    for label, folder in enumerate(classes):
        for path in sorted(p for p in folder.iterdir() if p.is_file() and is_image_name(p.name)):
            pixels.append(decode(path, prep, str(path)))
            labels.append(label)
            sources.append(image_source(path.name))
    names = tuple(folder.relative_to(root).as_posix() for folder in classes)
    groups = tuple(n.split("/")[0] for n in names)
    return ImageSet(stack(pixels, prep), np.asarray(labels, np.int64), names, groups, _drawers(root, sources))


def image_source(name: str) -> str | None:
    """The source an image's file name gives after its last ``@`` (``front@alice.jpg`` → ``alice``)."""
    stem = name.rsplit(".", 1)[0]
    return stem.rsplit("@", 1)[1] or None if "@" in stem else None


def _drawers(root: Path, sources: list[str | None]) -> np.ndarray | None:
    """Each image's source as an integer, when every image names one; None when none does."""
    named = sum(s is not None for s in sources)
    if named == 0:
        return None
    if named < len(sources):
        raise InputError(f"{root}: {named} of {len(sources)} images name their source (file name NAME@SOURCE.ext) and "
                         f"{len(sources) - named} do not: name one for every image, or for none")
    ids = {s: i for i, s in enumerate(sorted(set(sources), key=str))}
    return np.asarray([ids[s] for s in sources], np.int64)


def count_class_folders(root: str | os.PathLike[str]) -> int:
    """How many classes ``load_image_folder(root)`` would load, from the folder names alone (fast:
    no image is decoded); 0 for a missing folder (the load says why)."""
    return len(_class_folders(Path(root))) if Path(root).is_dir() else 0


def _class_folders(root: Path) -> list[Path]:
    """Folders that hold images directly; a folder of class folders is a group."""
    found = []
    for child in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        if any(is_image_name(p.name) for p in child.iterdir() if p.is_file()):
            found.append(child)
        else:
            found += [g for g in sorted(child.iterdir()) if g.is_dir() and any(
                is_image_name(p.name) for p in g.iterdir() if p.is_file())]
    return found
