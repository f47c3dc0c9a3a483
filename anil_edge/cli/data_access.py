"""Loading a training config's data for the commands that need images (export, evaluate)."""

from __future__ import annotations

import numpy as np

from ..errors import InputError
from ..runtime.metadata import Preprocessing
from ..runtime.preprocess import to_input


def config_split(config, sources: list[str] | None, prep: Preprocessing):
    """The train / validation / test split a TrainConfig describes (``sources`` overrides its data)."""
    from ..train.data.sources import load_split

    data = tuple(sources) if sources else config.data
    try:  # decoding uses the model's size, colour mode and resize filter
        return load_split(config.dataset, data, prep, validation=config.validation_fraction,
                          test=config.test_fraction, seed=config.split_seed)
    except InputError as exc:
        raise InputError(f"{exc} (pass --data to say where the {config.dataset!r} data is)") from None


def training_sample(config, prep: Preprocessing, n: int, sources: list[str] | None) -> np.ndarray:
    """``n`` training images (a fixed random subset), preprocessed as the model expects: (n, C, H, W)."""
    if n < 1:
        raise InputError(f"--calibration-images must be >= 1, found {n}")
    return to_input(config_split(config, sources, prep).train.sample_images(n), prep)
