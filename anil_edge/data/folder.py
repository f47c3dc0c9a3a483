"""Users' own data: a folder with one sub-folder of images per class.

``root/<class>/<image>`` — or, to group classes for group-wise splits,
``root/<group>/<class>/<image>`` (say, ``products/<brand>/<item>/``). Classes are sorted by name.
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
    pixels, labels = [], []
    for label, folder in enumerate(classes):
        for path in sorted(p for p in folder.iterdir() if p.is_file() and is_image_name(p.name)):
            pixels.append(decode(path, prep, str(path)))
            labels.append(label)
    names = tuple(folder.relative_to(root).as_posix() for folder in classes)
    groups = tuple(n.split("/")[0] for n in names)
    return ImageSet(stack(pixels, prep), np.asarray(labels, np.int64), names, groups)


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
