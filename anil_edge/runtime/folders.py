"""Image folders as the ecosystem lays them out (torchvision's ``ImageFolder``):
``root/<class>/<image>`` — one sub-folder of images per class; like ``ImageFolder``, images in
folders nested inside a class folder (``mug/side/1.jpg``) belong to that class, never dropped.

One walking rule for every client (the Node client follows it too): a folder named by the
caller, or a class folder, is followed even when it is a symlink; inside it, entries whose
names start with ``.`` are skipped, symlinked files are read, symlinked folders are not entered
(so a symlink loop is never walked), and paths come in sorted order."""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import InputError
from .labels import normalised
from .preprocess import IMAGE_SUFFIXES, is_image_name


def is_image(path: Path) -> bool:
    return path.is_file() and is_image_name(path.name)


def class_folders(root: str | os.PathLike[str]) -> dict[str, list[Path]]:
    """``root/<class>/<image>`` -> {class: [image paths]}, classes and images in sorted order;
    images in nested folders count for their class folder, hidden files and folders do not.
    Class names are NFC-normalised: folders whose names differ only in Unicode normalisation
    (``é`` typed one way or the other) are one class.

    Raises:
        InputError: no such folder, no class folders, or a class folder without images.
    """
    folder = Path(root)
    if not folder.is_dir():
        raise InputError(f"{folder}: no such folder (expected one sub-folder of images per class)")
    classes: dict[str, list[Path]] = {}
    for d in sorted(folder.iterdir()):
        if d.is_dir() and not d.name.startswith("."):
            classes.setdefault(normalised(d.name), []).extend(_images_under(d))
    if not classes:
        raise InputError(f"{folder}: no class folders found (expected {folder}/<class>/<image>.png)")
    empty = [name for name, paths in classes.items() if not paths]
    if empty:
        raise InputError(f"{folder}: class folder(s) with no images: {', '.join(empty)} "
                         f"(expected files ending in {', '.join(IMAGE_SUFFIXES)})")
    return classes


def _images_under(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*")
                  if is_image(p) and not any(part.startswith(".") for part in p.relative_to(folder).parts))


def images_in(paths: list[str]) -> list[Path]:
    """Image files named directly or found (recursively) in the folders named."""
    found: list[Path] = []
    for name in paths:
        path = Path(name)
        if path.is_dir():
            found += _images_under(path)
        elif path.is_file():
            found.append(path)
        else:
            raise InputError(f"{path}: no such file or folder")
    if not found:
        raise InputError(f"no images found in {', '.join(paths)}")
    return found
