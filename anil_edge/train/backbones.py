"""Backbones: images (N, C, H, W) -> embeddings (N, D).

- ``conv4``: the Conv-4 of MAML/ANIL (Finn et al., 2017; Raghu et al., 2019) as learn2learn's
  ``CNN4Backbone`` builds it: blocks of 3×3 conv (64 channels) → norm → ReLU → 2×2 max-pool,
  then flatten. 28×28 grayscale gives 64-d, 32×32 RGB 256-d, 84×84 RGB 1600-d embeddings.
- ``conv4-stride``: learn2learn's ``OmniglotCNN`` features: the same blocks with stride-2
  convolutions instead of pooling, then the spatial mean (64-d).
- ``resnet12``: learn2learn's ``ResNet12Backbone`` (:mod:`.resnet12`), the large option.
- ``timm:NAME``: an ImageNet architecture from timm (:mod:`.timm_backbone`), for photos.

``embedding="cosine"`` ends any of them with an L2 normalisation and a learned scale
(:class:`ScaledNormalized`; the cosine classifiers of Chen et al., 2019, and Gidaris &
Komodakis, 2018): part of the backbone, so the exported model computes it and the runtime's
head sees the scaled unit vectors.

Module names follow learn2learn's (``conv``, ``normalize``, ``max_pool``), so its weights load
directly; these declarations script, trace and export cleanly where learn2learn's lambdas do not.

``norm="group"`` swaps BatchNorm for GroupNorm, which normalises each image on its own: an
image's embedding then never depends on the batch around it, in training as on the device.
With ``norm="batch"`` the deployed model uses BatchNorm's running statistics (eval mode).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from .backbone_config import ARCHS, EMBEDDINGS, NORMS, BackboneConfig, make_norm, probe_dim
from .resnet12 import ResNet12Backbone
from .timm_backbone import TimmBackbone
from .timm_catalog import timm_name

__all__ = ["ARCHS", "EMBEDDINGS", "NORMS", "BackboneConfig", "BackboneModule", "CNN4Backbone", "ConvBlock",
           "ResNet12Backbone", "ScaledNormalized", "TimmBackbone", "build_backbone", "embed_from_prefix", "features_of",
           "frozen_prefix", "timm_part"]


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

    def __init__(self, config: BackboneConfig | None = None) -> None:
        super().__init__()
        config = config or BackboneConfig()
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


class ScaledNormalized(nn.Module):
    """``features`` (N, C, H, W) -> (N, D) embeddings of norm ``exp(log_scale)``, the scale learned
    (it sets the sharpness of the head's softmax); starts at sqrt(D)."""

    def __init__(self, features: CNN4Backbone | ResNet12Backbone | TimmBackbone) -> None:
        super().__init__()
        self.features = features
        self.config = features.config
        self.embedding_dim = features.embedding_dim
        self.log_scale = nn.Parameter(torch.tensor(0.5 * math.log(self.embedding_dim)))
        self.export_ops = False  # True while anil_edge.export.onnx_export traces it: the mobile-friendly operators

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.normalize(self.features(x))

    def normalize(self, z: torch.Tensor) -> torch.Tensor:
        """Features (N, D) scaled to norm ``exp(log_scale)``."""
        z = z.float()
        if self.export_ops:
            return _mobile_normalized(z, self.log_scale.exp())
        return z * (self.log_scale.exp() * z.square().sum(dim=1, keepdim=True).clamp_min(1e-12).rsqrt())


def _mobile_normalized(z: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """The same normalisation in operators that NNAPI and Core ML (NeuralNetwork) both run, so a
    phone takes the exported model whole: the sum of squares as a MatMul with ones (neither has
    ReduceSum), and a Div (NNAPI has no Reciprocal). Measured with onnxruntime's usability
    checker: 1 partition of every node on NNAPI and both Core ML formats (docs/deployment.md, Mobile)."""
    squares = (z * z) @ torch.ones(z.shape[1], 1, dtype=z.dtype, device=z.device)
    return z * (scale / squares.clamp_min(1e-12).sqrt())


BackboneModule = CNN4Backbone | ResNet12Backbone | TimmBackbone | ScaledNormalized  # every one: ``config``, ``embedding_dim``


class Whitened(nn.Module):
    """``backbone``'s embeddings whitened within class and rescaled, ``scale · normalize((z − mean)
    @ matrix)``: the map the export fits and calibrates (:mod:`anil_edge.export.whitening`), as
    the backbone's last layer so that every exported file computes it. Export only: training
    never sees it."""

    mean: torch.Tensor
    matrix: torch.Tensor
    scale: torch.Tensor

    def __init__(self, backbone: BackboneModule, mean: np.ndarray, matrix: np.ndarray, scale: float) -> None:
        super().__init__()
        self.backbone = backbone
        self.config: BackboneConfig = backbone.config
        self.embedding_dim: int = backbone.embedding_dim
        self.register_buffer("mean", torch.as_tensor(mean, dtype=torch.float32))
        self.register_buffer("matrix", torch.as_tensor(matrix, dtype=torch.float32))
        self.register_buffer("scale", torch.tensor(float(scale)))
        self.export_ops = False  # as ScaledNormalized's: the mobile-friendly normalisation while exported

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = (self.backbone(x).float() - self.mean) @ self.matrix
        if self.export_ops:
            return _mobile_normalized(z, self.scale)
        return z * (self.scale * z.square().sum(dim=1, keepdim=True).clamp_min(1e-12).rsqrt())


def build_backbone(config: BackboneConfig) -> BackboneModule:
    """The backbone an architecture name stands for; every one has ``embedding_dim``."""
    features: CNN4Backbone | ResNet12Backbone | TimmBackbone
    if timm_name(config.arch):
        features = TimmBackbone(config)
    else:
        features = ResNet12Backbone(config) if config.arch == "resnet12" else CNN4Backbone(config)
    return ScaledNormalized(features) if config.embedding == "cosine" else features


def features_of(backbone: BackboneModule) -> CNN4Backbone | ResNet12Backbone | TimmBackbone:
    """The feature network of ``backbone``: itself, or what the cosine normalisation wraps."""
    return backbone.features if isinstance(backbone, ScaledNormalized) else backbone


def frozen_prefix(backbone: BackboneModule) -> TimmBackbone | None:
    """The timm network inside ``backbone`` when it has frozen stages (a prefix to cache), or None."""
    net = timm_part(backbone)
    return net if net is not None and net.frozen > 0 else None


def embed_from_prefix(backbone: BackboneModule, h: torch.Tensor) -> torch.Tensor:
    """``backbone``'s embeddings (N, D) from its frozen prefix's output ``h`` (:func:`frozen_prefix`)."""
    net = frozen_prefix(backbone)
    if net is None:
        raise ValueError("embed_from_prefix needs a backbone with frozen stages")  # a programming error
    z = net.forward_rest(h)
    return backbone.normalize(z) if isinstance(backbone, ScaledNormalized) else z


def timm_part(backbone: BackboneModule) -> TimmBackbone | None:
    """The timm network inside ``backbone`` (under the cosine normalisation), or None."""
    inner = features_of(backbone)
    return inner if isinstance(inner, TimmBackbone) else None
