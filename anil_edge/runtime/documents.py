"""The JSON form of the runtime's dataclasses, derived from their fields (timm's
``PretrainedCfg.to_dict`` is ``asdict``): one writer for the model metadata and the sidecar.

Fields map to keys of the same name; tuples become lists, mapping keys strings, float32 arrays
``{"dtype", "shape", "base64"}`` (bit-exact), and fields that are None are left out.
"""

from __future__ import annotations

import base64
import dataclasses
from collections.abc import Mapping
from typing import Any

import numpy as np


def to_document(value: Any) -> Any:
    """``value`` (a dataclass, mapping, sequence, array or JSON scalar) as JSON-ready data."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_document(getattr(value, f.name)) for f in dataclasses.fields(value)
                if getattr(value, f.name) is not None}
    if isinstance(value, np.ndarray):
        return encode_array(value)
    if isinstance(value, Mapping):
        return {str(k): to_document(v) for k, v in value.items()}
    if isinstance(value, (tuple, list)):
        return [to_document(v) for v in value]
    return value


def encode_array(array: np.ndarray) -> dict[str, Any]:
    """A float32 array as base64 of its little-endian bytes, with its shape (round-trips exactly)."""
    array = np.ascontiguousarray(array, dtype="<f4")
    return {"dtype": "float32", "shape": list(array.shape), "base64": base64.b64encode(array.tobytes()).decode()}
