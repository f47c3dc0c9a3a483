"""The package's INFO lines (what a slow step is doing, the speed options chosen) on a stream,
for as long as a command runs. Library code logs; only the command line decides to show it."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from typing import TextIO


@contextlib.contextmanager
def info_lines(stream: TextIO) -> Iterator[None]:
    """``anil_edge``'s INFO records as plain lines on ``stream`` inside the block."""
    logger = logging.getLogger("anil_edge")
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(message)s"))
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
