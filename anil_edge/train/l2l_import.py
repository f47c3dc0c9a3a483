"""Importing learn2learn without gym's banner.

learn2learn imports gym, whose 0.26 release prints a multi-line "Gym has been unmaintained"
notice to stderr on import; anil-edge does not use gym, so the notice is only noise in every
command's output.
"""

from __future__ import annotations

import contextlib
import io

from ..errors import require


def learn2learn():
    """The ``learn2learn`` module (MissingDependencyError if it is not installed)."""
    with contextlib.redirect_stderr(io.StringIO()):
        return require("learn2learn", "train")
