"""Where anil-edge caches what it can make again (the rendered glyphs, the timed speed options):
``$ANIL_EDGE_CACHE``, else ``~/.cache/anil-edge``."""

from __future__ import annotations

import os
from pathlib import Path


def cache_folder() -> Path:
    return Path(os.environ.get("ANIL_EDGE_CACHE") or Path.home() / ".cache" / "anil-edge")
