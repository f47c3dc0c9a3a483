"""What kind of anil-edge file a path holds, from its first bytes: for errors that say "this is a
training checkpoint: export it first" instead of a parser's complaint about the wrong format."""

from __future__ import annotations

import zipfile
from pathlib import Path

ONNX, CHECKPOINT, STATE = "an ONNX model", "a training checkpoint", "an enrollment state"
HINTS = {
    ONNX: "this is an ONNX model",
    CHECKPOINT: "this is a training checkpoint (.pt): export it to ONNX first with anil-edge export",
    STATE: "this is an enrollment state (.npz), not a model",
}


def file_kind(path: str | Path) -> str | None:
    """:data:`ONNX`, :data:`CHECKPOINT`, :data:`STATE`, or None when it is none of them (or
    unreadable). A torch checkpoint is a zip holding ``*/data.pkl``; a state, a zip holding
    ``header.npy``; an ONNX model, a protobuf whose first field is ``ir_version`` (tag 0x08)."""
    path = Path(path)
    try:
        with path.open("rb") as handle:
            head = handle.read(4)
        if head.startswith(b"PK"):
            with zipfile.ZipFile(path) as archive:
                names = archive.namelist()
            if "header.npy" in names:
                return STATE
            if any(name.endswith("/data.pkl") for name in names):
                return CHECKPOINT
            return None
    except (OSError, zipfile.BadZipFile, ValueError):
        return None
    return ONNX if head[:1] == b"\x08" else None


def hint(path: str | Path, expected: str) -> str:
    """"; <what the file is>" when it is another anil-edge kind than ``expected``, else ""."""
    kind = file_kind(path)
    return f"; {HINTS[kind]}" if kind is not None and kind != expected else ""
