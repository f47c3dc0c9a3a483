"""Checkpoints: atomic saves, pickle-free loads (``weights_only=True``), exact RNG round trips.

A checkpoint holds the full :class:`~anil_edge.train.config.TrainConfig`, the model, optimiser
and schedule states, the iteration, the best validation score, the preprocessing the model was
trained with, and the Python / numpy / torch RNG states — so that ``--resume`` continues with
the same next tasks and augmentations as an uninterrupted run.
"""

from __future__ import annotations

import io
import os
import random
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch

from ..atomic import atomic_write
from ..errors import CheckpointError, first_line
from ..runtime.file_kind import CHECKPOINT, file_kind

FORMAT, VERSION = "anil-edge-checkpoint", 1


def save_checkpoint(path: str | os.PathLike[str], payload: dict[str, Any]) -> None:
    """Write ``payload`` (plus the format tag) atomically: a crash leaves the previous file.

    Serialised in memory first, so that a full disk or a failing device is the OS's own
    ``OSError`` from the write (torch's stream writer would report it as a RuntimeError)."""
    buffer = io.BytesIO()
    torch.save({"format": FORMAT, "version": VERSION, **payload}, buffer)
    with atomic_write(path) as handle:
        handle.write(buffer.getbuffer())


def load_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a checkpoint on the CPU without unpickling arbitrary objects."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises RuntimeError, UnpicklingError, EOFError, zipfile errors...
        kind = file_kind(path)
        if kind is not None and kind != CHECKPOINT:
            raise CheckpointError(f"{path} is {kind}, not a training checkpoint (a .pt written by anil-edge train)") from None
        if "weights_only" in str(exc):  # torch's advice to load unsafely: never taken here
            raise CheckpointError(f"{path}: cannot read as a checkpoint written by anil-edge train: it holds Python "
                                  "objects that a safe (weights-only) load refuses") from None
        first = first_line(exc)
        raise CheckpointError(f"{path}: cannot read as a checkpoint written by anil-edge train "
                              f"({type(exc).__name__}: {first})") from None
    found = payload.get("format") if isinstance(payload, dict) else type(payload).__name__
    if found != FORMAT:
        raise CheckpointError(f"{path}: expected an {FORMAT!r} file, found format {found!r}")
    if payload.get("version") != VERSION:
        raise CheckpointError(f"{path}: checkpoint version {payload.get('version')!r}, expected {VERSION}")
    return payload


def checkpoint_iteration(payload: dict[str, Any], path: str | os.PathLike[str]) -> int:
    """The meta-iterations a checkpoint records; CheckpointError unless a non-negative integer."""
    iteration = payload.get("iteration")
    if isinstance(iteration, bool) or not isinstance(iteration, int) or iteration < 0:
        raise CheckpointError(f"{path}: malformed iteration {iteration!r:.40}; expected an integer >= 0")
    return iteration


def rng_state() -> dict[str, Any]:
    """Python, numpy and torch (CPU and CUDA) RNG states, as tensors / plain types."""
    version, mt, gauss = random.getstate()
    name, keys, pos, has_gauss, cached = cast(tuple, np.random.get_state(legacy=True))
    state = {
        "python": [version, list(mt), gauss],
        "numpy": [name, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, cached],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    version, mt, gauss = state["python"]
    random.setstate((version, tuple(mt), gauss))
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
