"""ImageNet backbones from timm (``backbone="timm:NAME"``): the photo route.

The embedding is timm's own backbone/head split: ``forward_features`` then ``forward_head(...,
pre_logits=True)`` — the global pooling (and, for MobileNetV3, its 1×1 head convolution) without
the ImageNet classifier. ANIL's head goes on top. The preprocessing a model was pretrained with
(mean/std, interpolation, ``crop_pct``) comes from its timm pretrained config.

Only the architectures in :data:`SUPPORTED` are accepted: each is tested to export to ONNX FP32
and TorchScript, with the pixel, preprocessing and head graphs, through the same checks as
Conv-4 (tests/export/test_timm_export.py; the pretrained EfficientNet-Lite0 to INT8 as well).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..errors import InputError, require
from .timm_catalog import PREFIX, SUPPORTED, name_problems, timm_name


def create_timm(name: str, num_classes: int = 0) -> Any:
    """timm's ``name`` with random weights (weights come from :mod:`.pretrained` or a checkpoint);
    ``num_classes=0`` drops the ImageNet classifier. Built with timm's ``exportable`` layer config."""
    timm = require("timm", "timm")
    if name not in SUPPORTED:
        raise InputError(name_problems(PREFIX + name)[0])
    return timm.create_model(name, pretrained=False, num_classes=num_classes, exportable=True)


class TimmBackbone(nn.Module):
    """A timm model as an ANIL backbone: images (N, 3, H, W) -> pooled features (N, D)."""

    def __init__(self, config) -> None:  # config: BackboneConfig (arch "timm:NAME")
        super().__init__()
        self.config = config
        self.name = timm_name(config.arch) or ""
        self.net: Any = create_timm(self.name)  # a timm model (untyped)
        self.embedding_dim = int(self.net.num_features if not hasattr(self.net, "head_hidden_size")
                                 else self.net.head_hidden_size)
        self.frozen = 0  # stages without gradients (freeze_stages): the prefix forward_prefix runs

    @property
    def export_ops(self) -> bool:
        """True while anil_edge.export.onnx_export traces the model: the global pooling is then an
        AveragePool over the whole map, which Core ML's NeuralNetwork format runs (its ReduceMean
        it does not); the same mean, in an operator every mobile execution provider has."""
        return isinstance(self.net.global_pool, _WholeMapPool)

    @export_ops.setter
    def export_ops(self, on: bool) -> None:
        pool = self.net.global_pool
        if on and getattr(pool, "pool_type", "") == "avg":
            self.net.global_pool = _WholeMapPool(pool)
        elif not on and isinstance(pool, _WholeMapPool):
            self.net.global_pool = pool.original

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Embeddings (N, D) of normalised images (N, 3, H, W)."""
        return self.net.forward_head(self.net.forward_features(x), pre_logits=True)

    def stages(self) -> list[list[nn.Module]]:
        """The network in order, for ``freeze_stages``: the stem, then each stage of blocks."""
        net = self.net
        if hasattr(net, "blocks"):  # EfficientNet, MobileNetV3
            return [[net.conv_stem, net.bn1], *([stage] for stage in net.blocks)]
        return [[net.conv1, net.bn1], *([getattr(net, f"layer{i}")] for i in range(1, 5))]  # ResNet

    def freeze_stages(self, n: int) -> None:
        """Stop gradients through the first ``n`` of :meth:`stages` (the stem counts as one);
        ``n`` was checked against :data:`.timm_catalog.STAGES` with the training configuration."""
        for stage in self.stages()[:n]:
            for module in stage:
                module.requires_grad_(False)
        self.frozen = n

    def forward_prefix(self, x: torch.Tensor) -> torch.Tensor:
        """The frozen stages' output for images (N, 3, H, W): (N, C', H', W'). With frozen BatchNorm
        it is a fixed function of each image (``anil_edge.train.prefix_cache`` caches it);
        ``forward_rest(forward_prefix(x)) == forward(x)``."""
        net = self.net
        if hasattr(net, "blocks"):  # EfficientNet, MobileNetV3: stem = conv_stem + bn1 (with its activation)
            x = net.bn1(net.conv_stem(x))
            return net.blocks[: self.frozen - 1](x) if self.frozen > 1 else x
        x = net.maxpool(net.act1(net.bn1(net.conv1(x))))  # ResNet
        for i in range(1, self.frozen):
            x = getattr(net, f"layer{i}")(x)
        return x

    def forward_rest(self, x: torch.Tensor) -> torch.Tensor:
        """Embeddings (N, D) from :meth:`forward_prefix`'s output: the trainable stages, then the head."""
        net = self.net
        if hasattr(net, "blocks"):
            x = net.blocks[max(self.frozen - 1, 0):](x)
            if type(net).__name__ == "EfficientNet":  # its features end in conv_head + bn2 (MobileNetV3's head has them)
                x = net.bn2(net.conv_head(x))
        else:
            for i in range(max(self.frozen, 1), 5):
                x = getattr(net, f"layer{i}")(x)
        return net.forward_head(x, pre_logits=True)


class _WholeMapPool(nn.Module):
    """timm's average ``global_pool`` as an AveragePool whose kernel is the whole feature map."""

    def __init__(self, original: Any) -> None:
        super().__init__()
        self.original: Any = original

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = nn.functional.avg_pool2d(x, kernel_size=tuple(x.shape[-2:]))
        return self.original.flatten(pooled)
