"""Class labels on the device: strings or integers, never a mix of the two."""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from ..errors import InputError

Label = str | int  # a class label: text or an integer, never a mix within one classifier
# What the runtime accepts as images (see anil_edge.runtime.preprocess): a path, a PIL image, a
# numpy array (one image or a batch), or a list of those.
ImageInput = Any


def check_label(label: object, existing: Iterable[Label] = ()) -> Label:
    """``label`` as a plain ``str`` (NFC-normalised: "é" typed as one code point or as "e" plus
    an accent is one class) or ``int``, of the same type as the labels already enrolled."""
    if isinstance(label, np.generic):
        label = label.item()
    if isinstance(label, bool) or not isinstance(label, (str, int)):
        raise InputError(f"a class label must be a str or an int, found {type(label).__name__} {label!r}")
    if isinstance(label, str) and not label.strip():
        raise InputError("a class label must not be an empty string")
    checked: Label = normalised(label)
    for other in existing:
        if type(other) is not type(label):
            raise InputError(
                f"labels of mixed types: the enrolled labels are {type(other).__name__} "
                f"(e.g. {other!r}), found {type(label).__name__} {label!r}"
            )
        break
    return checked


def normalised(label: Any) -> Any:
    """A text label in Unicode NFC (one spelling per class), anything else as it is."""
    return unicodedata.normalize("NFC", label) if isinstance(label, str) else label


def label_sequence(labels: object) -> list[Any]:
    """``labels`` (one per image) as a list: a list, tuple, range or 1-d array. A string (its
    characters), a set (no order), a mapping or None is refused, never paired with images."""
    if isinstance(labels, np.ndarray):
        if labels.ndim != 1:
            raise InputError(f"labels must be 1-d (one per image), found an array of shape {labels.shape}")
        return labels.tolist()
    if isinstance(labels, (str, bytes)) or not isinstance(labels, Sequence):
        raise InputError(f"labels must be a sequence with one label per image (a list, tuple or 1-d array), found "
                         f"{type(labels).__name__} {labels!r:.40}")
    return list(labels)
