"""Read the pickled data files of FC100 and mini-ImageNet without running their code.

Those data sets are distributed as pickles of numpy arrays, lists and dicts. A plain
``pickle.load`` would execute whatever a tampered file asks for; this unpickler resolves only
the handful of callables that rebuild numpy arrays and refuses everything else.
"""

from __future__ import annotations

import io
import pickle
from pathlib import Path
from typing import Any

from ..errors import InputError

_ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
    ("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode"), ("collections", "OrderedDict"),
}


class _DataUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}: only numpy arrays, lists and dicts are allowed")


def load_data_pickle(path: Path) -> Any:
    """The object in a data pickle (Python 2 pickles decoded as latin-1, as learn2learn does)."""
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    try:
        return _DataUnpickler(io.BytesIO(path.read_bytes()), encoding="latin1").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError) as exc:
        raise InputError(f"{path}: not a readable data pickle ({exc})") from None
