"""Printing paths and labels for the commands (the folder walkers live in the runtime)."""

from __future__ import annotations

from ..runtime.folders import class_folders, images_in

__all__ = ["class_folders", "images_in", "printable"]


def printable(value: object) -> str:
    """``value`` as text a UTF-8 terminal can print: file names that are not valid UTF-8 (kept by
    Python as lone surrogates) show as ``\\\\udcNN`` escapes instead of raising UnicodeEncodeError."""
    return str(value).encode("utf-8", "backslashreplace").decode("utf-8")
