"""ResNet-12 (Oreshkin et al., 2018; Lee et al., 2019), as learn2learn's ``ResNet12Backbone``.

Four residual blocks (widths 64, 160, 320, 640), each three 3×3 convs with norm and
LeakyReLU(0.1), a 1×1 shortcut and 2×2 max-pooling; then the spatial mean (84×84 → 640-d,
learn2learn's ``AvgPool2d(5)`` on the 5×5 map). Parameter names match learn2learn's, so its
weights load as they are. DropBlock (a training-time regulariser, identity in eval mode) is left
out: the deployed function is the same, and the module scripts and exports.
"""

from __future__ import annotations

import torch
from torch import nn

from .backbone_config import BackboneConfig, make_norm, probe_dim

WIDTHS = (64, 160, 320, 640)


def _conv3x3(a: int, b: int) -> nn.Conv2d:
    return nn.Conv2d(a, b, 3, padding=1, bias=False)


class BasicBlock(nn.Module):
    def __init__(self, config: BackboneConfig, inplanes: int, planes: int) -> None:
        super().__init__()
        self.conv1, self.bn1 = _conv3x3(inplanes, planes), make_norm(config, planes)
        self.conv2, self.bn2 = _conv3x3(planes, planes), make_norm(config, planes)
        self.conv3, self.bn3 = _conv3x3(planes, planes), make_norm(config, planes)
        self.relu = nn.LeakyReLU(0.1)
        self.maxpool = nn.MaxPool2d(2)
        self.downsample = nn.Sequential(nn.Conv2d(inplanes, planes, 1, bias=False), make_norm(config, planes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.maxpool(self.relu(out + self.downsample(x)))


class ResNet12Backbone(nn.Module):
    """(N, C, H, W) -> (N, 640)."""

    def __init__(self, config: BackboneConfig) -> None:
        super().__init__()
        self.config = config
        widths = (config.channels,) + WIDTHS
        self.layer1 = nn.Sequential(BasicBlock(config, widths[0], widths[1]))  # learn2learn's names: layer1 .. layer4
        self.layer2 = nn.Sequential(BasicBlock(config, widths[1], widths[2]))
        self.layer3 = nn.Sequential(BasicBlock(config, widths[2], widths[3]))
        self.layer4 = nn.Sequential(BasicBlock(config, widths[3], widths[4]))
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="leaky_relu")
        self.embedding_dim = probe_dim(self, config)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return x.mean(dim=(2, 3))
