"""Loading a training config's data for the commands that need images (export, evaluate)."""

from __future__ import annotations

import numpy as np

from ..errors import InputError
from ..runtime.metadata import Preprocessing
from ..runtime.preprocess import to_input


def config_split(config, sources: list[str] | None, prep: Preprocessing):
    """The train / validation / test split a TrainConfig describes (``sources`` overrides its data)."""
    from ..train.data.sources import load_split
    from ..train.trainer import decode_preprocessing

    data = tuple(sources) if sources else config.data
    decode = Preprocessing(prep.input_size, prep.channels, (0.0,) * prep.channels, (1.0,) * prep.channels,
                           prep.invert, prep.resize) if prep else decode_preprocessing(config)
    try:
        return load_split(config.dataset, data, decode, validation=config.validation_fraction,
                          test=config.test_fraction, seed=config.split_seed)
    except InputError as exc:
        raise InputError(f"{exc} (pass --data to say where the {config.dataset!r} data is)") from None


def training_sample(config, prep: Preprocessing, n: int, sources: list[str] | None) -> np.ndarray:
    """``n`` training images (a fixed random subset), preprocessed as the model expects: (n, C, H, W)."""
    if n < 1:
        raise InputError(f"--calibration-images must be >= 1, found {n}")
    train = config_split(config, sources, prep).train
    pick = np.random.default_rng(0).permutation(train.images.shape[0])[:n]
    return to_input(train.images[np.sort(pick)], prep)
