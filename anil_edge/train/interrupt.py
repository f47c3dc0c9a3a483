"""Ctrl-C during meta-training keeps the work done: the first interrupt finishes the running
iteration, saves ``last.pt`` there and stops; a second stops at once. Either way the error says
which iteration ``--resume`` continues from."""

from __future__ import annotations

import logging
import signal
import threading
from pathlib import Path
from typing import Any

LOG = logging.getLogger(__name__)


class GracefulStop:
    """A context in which SIGINT only sets :attr:`requested` (the first time). Active in the main
    thread of a single process only: under torchrun every rank must stop at the same iteration,
    which a per-process flag cannot promise, so there Ctrl-C keeps its default behaviour."""

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled and threading.current_thread() is threading.main_thread()
        self.requested = False
        self._previous: Any = None  # the SIGINT handler to restore

    def __enter__(self) -> GracefulStop:
        if self.enabled:
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        if self.enabled:
            signal.signal(signal.SIGINT, self._previous)

    def _handle(self, signum, frame) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        LOG.warning("interrupted: finishing this iteration and saving last.pt (Ctrl-C again stops at once and loses "
                    "the work since the last checkpoint)")


def saved_message(out: Path, iteration: int) -> str:
    """What a graceful stop says."""
    return f"saved {out / 'last.pt'} after iteration {iteration}: the same command with --resume continues from there"


def lost_message(out: Path, iteration: int, last_saved: int | None) -> str:
    """What an immediate stop says: where --resume would restart, and what is lost."""
    if last_saved is None:
        return f"stopped in iteration {iteration}; no last.pt was written yet, so there is nothing to resume"
    return (f"stopped in iteration {iteration}; {out / 'last.pt'} holds iteration {last_saved}: the same command "
            f"with --resume continues from there (iterations {last_saved + 1}-{iteration} are run again)")
