"""learn2learn's benchmark data sets read from their on-disk formats under ``--data-root``.

The files are the ones learn2learn's own classes download and read (nothing is downloaded
here); pickles are read with :mod:`.safe_pickle`, never with ``pickle.load``:

- ``fc100``: ``FC100_{train,val,test}.pickle`` — ``{"data": (N, 32, 32, 3) uint8, "labels": [int]}``;
- ``mini-imagenet``: ``mini-imagenet-cache-{train,validation,test}.pkl`` —
  ``{"image_data": (N, 84, 84, 3) uint8, "class_dict": {name: [index]}}``;
- ``cifarfs``: ``cifarfs/processed/{train,val,test}/<class>/<image>.png`` (learn2learn's processed
  CIFAR-100 with Bertinetto et al.'s class splits);
- ``full-omniglot``: ``omniglot-py/images_{background,evaluation}/<Alphabet>/<character>/*.png``
  (torchvision's layout, 1,623 characters; split by alphabet like the minimal splits).

FC100, mini-ImageNet and CIFAR-FS come with fixed class splits, used as they are.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import InputError
from ..runtime.metadata import Preprocessing
from .decode import stack
from .folder import load_image_folder
from .image_set import ImageSet
from .omniglot import load_omniglot
from .safe_pickle import load_data_pickle
from .splits import Split

MODES = ("train", "validation", "test")


def load_fc100(root: str | Path, prep: Preprocessing) -> Split:
    def one(mode: str) -> ImageSet:
        path = Path(root) / f"FC100_{'val' if mode == 'validation' else mode}.pickle"
        archive = _mapping(load_data_pickle(path), path, ("data", "labels"))
        labels = np.asarray(archive["labels"], dtype=np.int64)
        return _from_arrays(archive["data"], labels, [str(c) for c in np.unique(labels)], prep, path)

    return Split(*(one(mode) for mode in MODES))


def load_mini_imagenet(root: str | Path, prep: Preprocessing) -> Split:
    def one(mode: str) -> ImageSet:
        path = Path(root) / f"mini-imagenet-cache-{mode}.pkl"
        archive = _mapping(load_data_pickle(path), path, ("image_data", "class_dict"))
        names = sorted(archive["class_dict"])
        labels = np.full(len(archive["image_data"]), -1, np.int64)
        for c, name in enumerate(names):
            labels[np.asarray(archive["class_dict"][name], dtype=np.int64)] = c
        if (labels < 0).any():
            raise InputError(f"{path}: {int((labels < 0).sum())} image(s) belong to no class in class_dict")
        return _from_arrays(archive["image_data"], labels, names, prep, path, relabel=False)

    return Split(*(one(mode) for mode in MODES))


def load_cifarfs(root: str | Path, prep: Preprocessing) -> Split:
    processed = Path(root) / "cifarfs" / "processed"
    if not processed.is_dir():
        raise InputError(f"{processed}: no such folder (expected learn2learn's processed CIFAR-FS layout)")
    return Split(*(load_image_folder(processed / ("val" if m == "validation" else m), prep) for m in MODES))


def load_full_omniglot(root: str | Path, prep: Preprocessing) -> ImageSet:
    base = Path(root) / "omniglot-py"
    sources = [base / f"images_{part}" for part in ("background", "evaluation")]
    missing = [str(s) for s in sources if not s.is_dir()]
    if missing:
        raise InputError(f"full Omniglot: missing folder(s) {missing} (torchvision's omniglot-py layout)")
    return load_omniglot(sources, prep)


def _mapping(obj, path: Path, keys: tuple[str, ...]) -> dict:
    if not isinstance(obj, dict) or any(k not in obj for k in keys):
        found = sorted(obj) if isinstance(obj, dict) else type(obj).__name__
        raise InputError(f"{path}: expected a dict with keys {list(keys)}, found {found}")
    return obj


def _from_arrays(images, labels: np.ndarray, names: list[str], prep: Preprocessing, path: Path,
                 relabel: bool = True) -> ImageSet:
    images = np.asarray(images)
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] != 3 or len(images) != len(labels):
        raise InputError(f"{path}: expected uint8 images (N, H, W, 3) and N labels, "
                         f"found {images.dtype} {images.shape} and {len(labels)} labels")
    if relabel:
        labels = np.searchsorted(np.unique(labels), labels)
    if images.shape[1:3] != tuple(prep.input_size) or prep.channels != 3:
        images = _resize(images, prep)
    return ImageSet(images, labels.astype(np.int64), tuple(names), tuple(names))


def _resize(images: np.ndarray, prep: Preprocessing) -> np.ndarray:
    from PIL import Image

    from ..runtime.preprocess import pil_pixels

    return stack([pil_pixels(Image.fromarray(img), prep) for img in images], prep)
