"""The images a trained model's data record points to: its class split, and training samples
for export (parity checks and INT8 calibration). numpy only: a device install can rebuild the
held-out classes a model was scored on."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..runtime.legacy import model_source
from ..runtime.metadata import DataProvenance, Preprocessing
from ..runtime.preprocess import to_input
from .sources import load_split
from .splits import Split


def located(provenance: DataProvenance, model_folder: str | os.PathLike[str]) -> DataProvenance:
    """An exported model's sources found where it records them (:func:`.legacy.model_source`)."""
    return replace(provenance, sources=tuple(model_source(s, Path(model_folder)) for s in provenance.sources))


def provenance_split(provenance: DataProvenance, sources: Sequence[str] | None, prep: Preprocessing) -> Split:
    """The train / validation / test split ``provenance`` records (``sources`` overrides its data)."""
    data = tuple(sources) if sources else provenance.sources
    try:  # decoding uses the model's size, colour mode and resize filter
        return load_split(provenance.dataset, data, prep, validation=provenance.validation_fraction,
                          test=provenance.test_fraction, seed=provenance.split_seed)
    except InputError as exc:
        raise InputError(f"{exc} (pass --data to say where the {provenance.dataset!r} data is)") from None


def training_sample(split: Split, prep: Preprocessing, n: int) -> np.ndarray:
    """``n`` training images (a fixed random subset), preprocessed as the model expects: (n, C, H, W)."""
    if n < 1:
        raise InputError(f"--calibration-images must be >= 1, found {n}")
    return to_input(split.train.sample_images(n), prep)
