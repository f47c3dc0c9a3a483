"""Backbones: images (N, C, H, W) -> embeddings (N, D).

The Conv-4 family of MAML/ANIL (Finn et al., 2017; Raghu et al., 2019), as learn2learn builds
it: four blocks of 3×3 conv (64 channels) → BatchNorm → ReLU → 2×2 max-pool, then flatten.
28×28 grayscale gives 64-d, 32×32 RGB 256-d, 84×84 RGB 1600-d embeddings.

``norm="group"`` swaps BatchNorm for GroupNorm, which normalises each image on its own: an
image's embedding then never depends on the batch around it, in training as on the device.
With ``norm="batch"`` the deployed model uses BatchNorm's running statistics (eval mode).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


NORMS = ("batch", "group")


@dataclass(frozen=True)
class BackboneConfig:
    """Architecture of a Conv-4 backbone."""

    channels: int = 1  # input channels: 1 grayscale, 3 RGB
    input_size: int = 28  # input height = width in pixels
    hidden: int = 64  # feature maps per conv block
    blocks: int = 4  # conv blocks, each halving the resolution
    norm: str = "batch"  # "batch": BatchNorm (learn2learn's); "group": GroupNorm, per image
    groups: int = 8  # GroupNorm groups (norm="group"); must divide hidden

    def __post_init__(self) -> None:
        if self.norm not in NORMS:
            raise ValueError(f"norm must be one of {NORMS}, found {self.norm!r}")
        if self.norm == "group" and self.hidden % self.groups:
            raise ValueError(f"groups={self.groups} must divide hidden={self.hidden}")


class CNN4Backbone(nn.Module):
    """Conv-4: ``blocks`` × (conv3×3 → BN → ReLU → maxpool2×2) → flatten; (N, C, H, W) -> (N, D)."""

    def __init__(self, config: BackboneConfig = BackboneConfig()) -> None:
        super().__init__()
        self.config = config
        layers: list[nn.Module] = []
        in_ch = config.channels
        for _ in range(config.blocks):
            layers += [
                nn.Conv2d(in_ch, config.hidden, kernel_size=3, padding=1),
                _norm(config),
                nn.ReLU(),
                nn.MaxPool2d(2),
            ]
            in_ch = config.hidden
        self.features = nn.Sequential(*layers)
        self.embedding_dim = self._probe_dim()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Embeddings (N, D) of images (N, C, H, W)."""
        return self.features(x).flatten(1)

    def _probe_dim(self) -> int:
        size = self.config.input_size
        for _ in range(self.config.blocks):
            size //= 2
        return self.config.hidden * size * size


def _norm(config: BackboneConfig) -> nn.Module:
    if config.norm == "group":
        return nn.GroupNorm(config.groups, config.hidden)
    return nn.BatchNorm2d(config.hidden)
