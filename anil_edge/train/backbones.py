"""Backbones: images (N, C, H, W) -> embeddings (N, D).

- ``conv4``: the Conv-4 of MAML/ANIL (Finn et al., 2017; Raghu et al., 2019) as learn2learn's
  ``CNN4Backbone`` builds it: blocks of 3×3 conv (64 channels) → norm → ReLU → 2×2 max-pool,
  then flatten. 28×28 grayscale gives 64-d, 32×32 RGB 256-d, 84×84 RGB 1600-d embeddings.
- ``conv4-stride``: learn2learn's ``OmniglotCNN`` features: the same blocks with stride-2
  convolutions instead of pooling, then the spatial mean (64-d).
- ``resnet12``: learn2learn's ``ResNet12Backbone`` (:mod:`.resnet12`), the large option.

Module names follow learn2learn's (``conv``, ``normalize``, ``max_pool``), so its weights load
directly; these declarations script, trace and export cleanly where learn2learn's lambdas do not.

``norm="group"`` swaps BatchNorm for GroupNorm, which normalises each image on its own: an
image's embedding then never depends on the batch around it, in training as on the device.
With ``norm="batch"`` the deployed model uses BatchNorm's running statistics (eval mode).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

NORMS = ("batch", "group")
ARCHS = ("conv4", "conv4-stride", "resnet12")


@dataclass(frozen=True)
class BackboneConfig:
    """Architecture of a backbone."""

    channels: int = 1  # input channels: 1 grayscale, 3 RGB
    input_size: int = 28  # input height = width in pixels
    hidden: int = 64  # conv4*: feature maps per conv block
    blocks: int = 4  # conv4*: conv blocks, each halving the resolution
    norm: str = "batch"  # "batch": BatchNorm (learn2learn's); "group": GroupNorm, per image
    groups: int = 8  # GroupNorm groups (norm="group"); must divide every layer's width
    arch: str = "conv4"  # "conv4", "conv4-stride" or "resnet12"

    def __post_init__(self) -> None:
        if self.norm not in NORMS:
            raise ValueError(f"norm must be one of {NORMS}, found {self.norm!r}")
        if self.arch not in ARCHS:
            raise ValueError(f"arch must be one of {ARCHS}, found {self.arch!r}")
        if self.norm == "group" and self.arch != "resnet12" and self.hidden % self.groups:
            raise ValueError(f"groups={self.groups} must divide hidden={self.hidden}")


def make_norm(config: BackboneConfig, width: int) -> nn.Module:
    if config.norm == "group":
        return nn.GroupNorm(config.groups, width)
    return nn.BatchNorm2d(width)


class ConvBlock(nn.Module):
    """3×3 conv → norm → ReLU → 2×2 max-pool (or a stride-2 conv and no pooling)."""

    def __init__(self, config: BackboneConfig, in_ch: int, out_ch: int, pool: bool) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_ch, out_ch, 3, stride=1 if pool else 2, padding=1)
        self.normalize = make_norm(config, out_ch)
        self.relu = nn.ReLU()
        self.max_pool = nn.MaxPool2d(2) if pool else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.max_pool(self.relu(self.normalize(self.conv(x))))


class CNN4Backbone(nn.Module):
    """Conv-4 (``conv4``: pool and flatten; ``conv4-stride``: stride-2 convs, spatial mean)."""

    def __init__(self, config: BackboneConfig = BackboneConfig()) -> None:
        super().__init__()
        self.config = config
        pool = config.arch == "conv4"
        widths = [config.channels] + [config.hidden] * config.blocks
        self.features = nn.Sequential(*(ConvBlock(config, a, b, pool) for a, b in zip(widths, widths[1:])))
        self.flatten: bool = pool  # conv4 flattens the map; conv4-stride takes its spatial mean
        self.embedding_dim = probe_dim(self, config)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Embeddings (N, D) of images (N, C, H, W)."""
        x = self.features(x)
        return x.flatten(1) if self.flatten else x.mean(dim=(2, 3))


def probe_dim(backbone: nn.Module, config: BackboneConfig) -> int:
    """Embedding size, from one eval-mode forward of a blank image."""
    was_training = backbone.training
    backbone.eval()
    with torch.no_grad():
        dim = backbone(torch.zeros(1, config.channels, config.input_size, config.input_size)).shape[1]
    backbone.train(was_training)
    return int(dim)


def build_backbone(config: BackboneConfig) -> nn.Module:
    """The backbone an architecture name stands for; every one has ``embedding_dim``."""
    if config.arch == "resnet12":
        from .resnet12 import ResNet12Backbone

        return ResNet12Backbone(config)
    return CNN4Backbone(config)
