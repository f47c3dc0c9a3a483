"""Class labels on the device: strings or integers, never a mix of the two."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from ..errors import InputError

Label = str | int  # a class label: text or an integer, never a mix within one classifier
# What the runtime accepts as images (see anil_edge.runtime.preprocess): a path, a PIL image, a
# numpy array (one image or a batch), or a list of those.
ImageInput = Any


def check_label(label: object, existing: Iterable[Label] = ()) -> Label:
    """``label`` as a plain ``str`` or ``int``, of the same type as the labels already enrolled."""
    if isinstance(label, np.generic):
        label = label.item()
    if isinstance(label, bool) or not isinstance(label, (str, int)):
        raise InputError(f"a class label must be a str or an int, found {type(label).__name__} {label!r}")
    if isinstance(label, str) and not label.strip():
        raise InputError("a class label must not be an empty string")
    for other in existing:
        if type(other) is not type(label):
            raise InputError(
                f"labels of mixed types: the enrolled labels are {type(other).__name__} "
                f"(e.g. {other!r}), found {type(label).__name__} {label!r}"
            )
        break
    return label
