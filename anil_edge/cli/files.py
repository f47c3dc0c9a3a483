"""Finding image files for the commands: class folders and loose images."""

from __future__ import annotations

from pathlib import Path

from ..errors import InputError
from ..runtime.preprocess import IMAGE_SUFFIXES, is_image_name


def printable(value: object) -> str:
    """``value`` as text a UTF-8 terminal can print: file names that are not valid UTF-8 (kept by
    Python as lone surrogates) show as ``\\udcNN`` escapes instead of raising UnicodeEncodeError."""
    return str(value).encode("utf-8", "backslashreplace").decode("utf-8")


def is_image(path: Path) -> bool:
    return path.is_file() and is_image_name(path.name)


def class_folders(root: str) -> dict[str, list[Path]]:
    """``root/<class>/<image>`` -> {class: [image paths]}; every class folder must hold images."""
    folder = Path(root)
    if not folder.is_dir():
        raise InputError(f"{folder}: no such folder (expected one sub-folder of images per class)")
    classes = {d.name: sorted(p for p in d.iterdir() if is_image(p))
               for d in sorted(folder.iterdir()) if d.is_dir() and not d.name.startswith(".")}
    if not classes:
        raise InputError(f"{folder}: no class folders found (expected {folder}/<class>/<image>.png)")
    empty = [name for name, paths in classes.items() if not paths]
    if empty:
        raise InputError(f"{folder}: class folder(s) with no images: {', '.join(empty)} "
                         f"(expected files ending in {', '.join(IMAGE_SUFFIXES)})")
    return classes


def images_in(paths: list[str]) -> list[Path]:
    """Image files named directly or found (recursively) in the folders named."""
    found: list[Path] = []
    for name in paths:
        path = Path(name)
        if path.is_dir():
            found += sorted(p for p in path.rglob("*") if is_image(p))
        elif path.is_file():
            found.append(path)
        else:
            raise InputError(f"{path}: no such file or folder")
    if not found:
        raise InputError(f"no images found in {', '.join(paths)}")
    return found
