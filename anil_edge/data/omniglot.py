"""Omniglot in its original distribution layout (Lake et al., 2015), zipped or extracted.

``images_background*/<Alphabet>/characterNN/<character id>_<drawer>.png``: 105×105 black
strokes on white, each character drawn once by each of 20 people (``_01`` … ``_20``, numbered
within an alphabet); the drawer is kept when every file name has that form. Decoded to the
model's input size (28×28 by convention) with the runtime's own resize; the model's
preprocessing inverts them so that strokes are 1. Characters found in several sources (the two
"minimal" background splits share Greek and Latin) are merged: one class per (alphabet,
character), one image per drawer file.
"""

from __future__ import annotations

import os
import re
import zipfile
from collections.abc import Iterator, Sequence
from pathlib import Path, PurePosixPath

import numpy as np

from ..errors import InputError
from ..runtime.metadata import Preprocessing
from ..runtime.preprocess import is_image_name
from .decode import decode, stack
from .image_set import ImageSet


def load_omniglot(sources: Sequence[str | os.PathLike[str]], prep: Preprocessing) -> ImageSet:
    """Omniglot characters from zip files and/or extracted folders; groups are alphabets."""
    if not sources:
        raise InputError("no Omniglot source given: expected zip files or folders in the Omniglot layout")
    files: dict[tuple[str, str], dict[str, tuple[str, object]]] = {}
    for source in sources:
        found = 0
        for alphabet, character, name, where, read in _members(Path(source)):
            files.setdefault((alphabet, character), {}).setdefault(name, (where, read))
            found += 1
        if found == 0:
            raise InputError(
                f"{source}: no images in the Omniglot layout "
                "(expected <Alphabet>/<character>/<image>.png, optionally under one top folder)"
            )
    return _decode_all(files, prep)


_DRAWN_BY = re.compile(r"^\d+_(\d+)\.[A-Za-z]+$")  # 0108_07.png: character 0108, drawer 07


def _decode_all(files: dict, prep: Preprocessing) -> ImageSet:
    keys = sorted(files)
    pixels, labels, drawers = [], [], []
    for label, key in enumerate(keys):
        for name in sorted(files[key]):
            where, read = files[key][name]
            pixels.append(decode(read(), prep, where))
            labels.append(label)
            match = _DRAWN_BY.match(name)
            drawers.append(int(match.group(1)) if match else -1)
    return ImageSet(
        images=stack(pixels, prep),
        labels=np.asarray(labels, np.int64),
        class_names=tuple(f"{a}/{c}" for a, c in keys),
        groups=tuple(a for a, _ in keys),
        drawers=None if -1 in drawers else np.asarray(drawers, np.int64),
    )


def _members(source: Path) -> Iterator[tuple[str, str, str, str, object]]:
    """(alphabet, character, file name, description, reader) for every image of a source."""
    if source.is_dir():
        for path in sorted(source.rglob("*")):
            parts = path.relative_to(source).parts
            if path.is_file() and is_image_name(path.name) and len(parts) in (3, 4):
                yield parts[-3], parts[-2], parts[-1], str(path), (lambda p=path: p)
    elif zipfile.is_zipfile(source):
        archive = zipfile.ZipFile(source)
        for info in archive.infolist():
            parts = PurePosixPath(info.filename).parts
            if not info.is_dir() and is_image_name(parts[-1]) and len(parts) in (3, 4):
                where = f"{source}:{info.filename}"
                yield parts[-3], parts[-2], parts[-1], where, (lambda i=info, a=archive: a.read(i))
    elif source.exists():
        raise InputError(f"{source}: expected a zip file or a folder in the Omniglot layout, found another kind of file")
    else:
        raise InputError(f"{source}: no such file or folder")
