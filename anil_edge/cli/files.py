"""Printing paths and labels for the commands (the folder walkers live in the runtime)."""

from __future__ import annotations

from ..runtime.folders import class_folders, images_in

__all__ = ["class_folders", "images_in", "printable"]


_CONTROLS = {c: f"\\x{c:02x}" for c in (*range(0x20), *range(0x7F, 0xA0))}  # C0, DEL and C1 controls


def printable(value: object, *, lines: bool = False) -> str:
    """``value`` as text a UTF-8 terminal can print as it is: file names that are not valid UTF-8
    (kept by Python as lone surrogates) show as ``\\udcNN`` escapes instead of raising
    UnicodeEncodeError, and control characters (a newline, an ESC sequence that would clear the
    screen) as ``\\xNN``, so that one name stays one row and the terminal is left alone. ``lines``:
    keep newlines (a multi-line message of our own, such as a list of problems)."""
    text = str(value).encode("utf-8", "backslashreplace").decode("utf-8")
    return "\n".join(part.translate(_CONTROLS) for part in text.split("\n")) if lines else text.translate(_CONTROLS)
