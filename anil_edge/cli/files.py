"""What the commands share about files: printing paths and labels, and which model file of an
export to run (the folder walkers live in the runtime)."""

from __future__ import annotations

from ..runtime.folders import class_folders, images_in
from ..runtime.int8_variants import PRECISIONS

__all__ = ["add_precision_option", "class_folders", "images_in", "printable"]


def add_precision_option(parser) -> None:
    """``--precision``: the file of the export the command runs (runtime/int8_variants.py)."""
    parser.add_argument("--precision", choices=PRECISIONS, default="file",
                        help="file (default): the model named; auto: its INT8 model (model.int8.onnx) where that is "
                             "exact and faster on this CPU, else FP32 (anil-edge info MODEL says which and why); "
                             "fp32 or int8: that one. An INT8 model whose kernels can saturate on this CPU is refused")


_CONTROLS = {c: f"\\x{c:02x}" for c in (*range(0x20), *range(0x7F, 0xA0))}  # C0, DEL and C1 controls


def printable(value: object, *, lines: bool = False) -> str:
    """``value`` as text a UTF-8 terminal can print as it is: file names that are not valid UTF-8
    (kept by Python as lone surrogates) show as ``\\udcNN`` escapes instead of raising
    UnicodeEncodeError, and control characters (a newline, an ESC sequence that would clear the
    screen) as ``\\xNN``, so that one name stays one row and the terminal is left alone. ``lines``:
    keep newlines (a multi-line message of our own, such as a list of problems)."""
    text = str(value).encode("utf-8", "backslashreplace").decode("utf-8")
    return "\n".join(part.translate(_CONTROLS) for part in text.split("\n")) if lines else text.translate(_CONTROLS)
