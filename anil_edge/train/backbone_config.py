"""A backbone's architecture (:class:`BackboneConfig`) and the pieces every backbone shares."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..errors import InputError, first_line, raise_if_problems
from ..schema import BACKBONES as ARCHS
from ..schema import EMBEDDINGS, GROUPNORM_GROUPS, NORMS
from .timm_catalog import name_problems, timm_name


@dataclass(frozen=True)
class BackboneConfig:
    """Architecture of a backbone."""

    channels: int = 1  # input channels: 1 grayscale, 3 RGB
    input_size: int = 28  # input height = width in pixels
    hidden: int = 64  # conv4*: feature maps per conv block
    blocks: int = 4  # conv4*: conv blocks, each halving the resolution
    norm: str = "batch"  # "batch": BatchNorm (learn2learn's); "group": GroupNorm, per image
    groups: int = GROUPNORM_GROUPS  # GroupNorm groups (norm="group"); must divide every layer's width
    arch: str = "conv4"  # "conv4", "conv4-stride", "resnet12" or "timm:NAME"
    embedding: str = "raw"  # "raw" features, or "cosine": L2-normalised times a learned scale

    def __post_init__(self) -> None:
        problems = []
        if self.norm not in NORMS:
            problems.append(f"norm must be one of {NORMS}, found {self.norm!r}")
        if self.arch not in ARCHS:
            problems += name_problems(self.arch) if timm_name(self.arch) else [
                f"arch must be one of {ARCHS} or timm:NAME, found {self.arch!r}"]
        if self.embedding not in EMBEDDINGS:
            problems.append(f"embedding must be one of {EMBEDDINGS}, found {self.embedding!r}")
        if self.norm == "group" and self.arch != "resnet12" and self.hidden % self.groups:
            problems.append(f"groups={self.groups} must divide hidden={self.hidden}")
        raise_if_problems(problems, InputError, "invalid backbone")


def make_norm(config: BackboneConfig, width: int) -> nn.Module:
    if config.norm == "group":
        return nn.GroupNorm(config.groups, width)
    return nn.BatchNorm2d(width)


def probe_dim(backbone: nn.Module, config: BackboneConfig) -> int:
    """Embedding size, from one eval-mode forward of a blank image."""
    was_training = backbone.training
    backbone.eval()
    try:
        with torch.no_grad():
            dim = backbone(torch.zeros(1, config.channels, config.input_size, config.input_size)).shape[1]
    except RuntimeError as exc:  # e.g. an input that the pooling layers shrink to nothing
        raise InputError(f"a {config.arch} backbone cannot take {config.input_size}x{config.input_size} inputs "
                         f"({first_line(exc, 160)}); use a larger input_size or fewer blocks") from None
    finally:
        backbone.train(was_training)
    return int(dim)
