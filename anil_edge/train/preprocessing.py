"""How a training configuration decodes and normalises its images: what the exported model's
metadata records, and what the runtime, the pixel model and the JS clients then apply.

A timm backbone brings the preprocessing its ImageNet weights were trained with (timm's
``pretrained_cfg``: mean/std, interpolation, ``crop_pct``) wherever the config leaves it on auto.
"""

from __future__ import annotations

from dataclasses import replace

from ..data.splits import Split
from ..runtime.metadata import IMAGENET_MEAN, IMAGENET_STD, Preprocessing
from .batches import normalisation_stats
from .config import TrainConfig
from .timm_catalog import PretrainedPreprocessing, pretrained_preprocessing, timm_name


def decode_preprocessing(config: TrainConfig) -> Preprocessing:
    """How image files are decoded for training (size, colour, resize filter, crop): the runtime's."""
    timm = _timm(config)
    resize = config.resize if config.resize != "auto" else (timm.interpolation if timm else "lanczos")
    crop_pct = config.crop_pct if config.crop_pct is not None else (timm.crop_pct if timm else 1.0)
    return Preprocessing((config.input_size, config.input_size), config.channels, (0.0,) * config.channels,
                         (1.0,) * config.channels, invert=config.inverts, resize=resize, crop=config.crop_mode,
                         crop_pct=crop_pct)


def preprocessing_for(config: TrainConfig, split: Split) -> Preprocessing:
    """The decoding above, normalised with the training images' per-channel mean and std,
    ImageNet's (``normalization="imagenet"``) or the timm weights' (``"backbone"``, auto for timm)."""
    decode, timm = decode_preprocessing(config), _timm(config)
    if config.normalization == "imagenet":
        return replace(decode, mean=IMAGENET_MEAN, std=IMAGENET_STD)
    if timm is not None and config.normalization in ("auto", "backbone"):
        return replace(decode, mean=timm.mean, std=timm.std)
    mean, std = normalisation_stats(split.train, config.inverts)
    return replace(decode, mean=mean, std=std)


def _timm(config: TrainConfig) -> PretrainedPreprocessing | None:
    name = timm_name(config.backbone)
    return None if name is None else pretrained_preprocessing(name)
