"""Decode image files (from disk or inside a zip) into uint8 pixels at the model's input size."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from ..errors import InputError, require
from ..runtime.metadata import Preprocessing
from ..runtime.preprocess import pil_pixels


def decode(data: bytes | Path, prep: Preprocessing, where: str) -> np.ndarray:
    """One image file's pixels, uint8 (H, W, C), converted and resized as the runtime does."""
    Image = require("PIL.Image", "images")
    try:
        with Image.open(io.BytesIO(data) if isinstance(data, bytes) else data) as img:
            img.load()
            return pil_pixels(img, prep)
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        raise InputError(f"cannot read {where} as an image ({exc})") from None


def stack(pixels: list[np.ndarray], prep: Preprocessing) -> np.ndarray:
    """(M, H, W, C) uint8, also for M = 0."""
    if not pixels:
        return np.zeros((0, *prep.input_size, prep.channels), np.uint8)
    return np.stack(pixels)
