"""ANIL's model: a backbone reused as is, and a linear head that each task adapts.

Split as timm splits its models: :meth:`AnilModel.forward_features` (images → embeddings) and
:meth:`AnilModel.forward_head` (embeddings → logits).
"""

from __future__ import annotations

import torch
from torch import nn

from ..errors import CheckpointError, InputError
from ..runtime.metadata import LearnedHead
from .backbones import BackboneConfig, build_backbone, embed_from_prefix, features_of, frozen_prefix, timm_part
from .checkpoint import load_checkpoint
from .config import TrainConfig
from .pretrained import load_pretrained, read_state_dict
from .timm_catalog import resolve_pretrained


class AnilModel(nn.Module):
    """Backbone (N, C, H, W) -> (N, D) and a meta-learned head of ``ways`` rows (ways, D)."""

    def __init__(self, backbone: BackboneConfig, ways: int, freeze_bn: bool = False) -> None:
        super().__init__()
        self.backbone = build_backbone(backbone)
        self.head = nn.Linear(self.backbone.embedding_dim, ways)
        self.freeze_bn = freeze_bn  # BatchNorm keeps its running statistics (eval mode) in training too
        self.autocast: torch.dtype | None = None  # e.g. torch.bfloat16: the backbone runs under autocast
        self.channels_last = False  # feed the backbone NHWC tensors (set with .to(memory_format=...))
        self.chunk = 0  # images per backbone call (0: all at once); cache-sized chunks are faster on CPUs

    def train(self, mode: bool = True) -> AnilModel:
        """As ``nn.Module.train``; with ``freeze_bn`` every BatchNorm stays in eval mode, so that it
        normalises with (and keeps) the statistics the pretrained weights were trained with."""
        super().train(mode)
        if mode and self.freeze_bn:
            for module in self.modules():
                if isinstance(module, nn.modules.batchnorm._BatchNorm):
                    module.eval()
        return self

    @property
    def embedding_dim(self) -> int:
        return self.backbone.embedding_dim

    def forward_features(self, x: torch.Tensor, prefixed: bool = False) -> torch.Tensor:
        """Embeddings (N, D) of normalised images (N, C, H, W); float32 even under autocast.
        ``prefixed``: ``x`` is the frozen prefix's output (:meth:`forward_prefix`), not images.

        Run in chunks of ``self.chunk`` images: with GroupNorm (or BatchNorm in eval mode) the
        result is the same; with BatchNorm in train mode each chunk has its own statistics.
        """
        run = self._rest if prefixed else self._features
        if 0 < self.chunk < x.shape[0]:
            return torch.cat([run(part) for part in x.split(self.chunk)])
        return run(x)

    def forward_prefix(self, x: torch.Tensor) -> torch.Tensor:
        """The frozen stages' output (N, C', H', W') for normalised images (N, C, H, W), in their
        dtype (float32 also under autocast), without gradients (the stages have none)."""
        net = frozen_prefix(self.backbone)
        if net is None:
            raise ValueError("forward_prefix needs a backbone with frozen stages")  # a programming error
        with torch.no_grad():
            return self._autocast(net.forward_prefix, x).to(x.dtype)

    def _features(self, x: torch.Tensor) -> torch.Tensor:
        return self._autocast(self.backbone, x).float()

    def _rest(self, h: torch.Tensor) -> torch.Tensor:
        return self._autocast(lambda t: embed_from_prefix(self.backbone, t), h).float()

    def _autocast(self, fn, x: torch.Tensor) -> torch.Tensor:
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        if self.autocast is None:
            return fn(x)
        with torch.autocast(x.device.type, dtype=self.autocast):
            return fn(x)

    def forward_head(self, embeddings: torch.Tensor) -> torch.Tensor:
        """Logits (N, ways) of the meta-learned (unadapted) head."""
        return self.head(embeddings)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))

    def learned_head(self) -> LearnedHead:
        """The meta-learned head as the runtime holds it (float32 numpy, CPU)."""
        return LearnedHead(self.head.weight.detach().float().cpu().numpy(),
                           self.head.bias.detach().float().cpu().numpy())


def build_model(config: TrainConfig, pretrained: bool = False) -> AnilModel:
    """The model a training config describes (CPU, float32): initial weights, or with
    ``pretrained`` the config's pretrained backbone weights and frozen stages (for training)."""
    backbone = BackboneConfig(config.channels, config.input_size, config.hidden, config.blocks, norm=config.norm,
                              arch=config.backbone, embedding=config.embedding)
    model = AnilModel(backbone, config.ways, freeze_bn=config.freezes_bn)
    net = timm_part(model.backbone)
    if pretrained and config.init_from:
        init_from_checkpoint(model, config)
    if pretrained and net is not None:
        if config.pretrained:
            path = resolve_pretrained(config.pretrained, net.name)
            load_pretrained(net.net, read_state_dict(path), str(path))
        net.freeze_stages(config.freeze_stages)
    return model


ARCHITECTURE = ("backbone", "channels", "input_size", "hidden", "blocks", "norm", "embedding")  # what init_from must share


def init_from_checkpoint(model: AnilModel, config: TrainConfig) -> None:
    """Copy the backbone of the anil-edge checkpoint ``config.init_from`` into ``model`` (the head
    starts anew: its rows belong to the earlier tasks' classes). Its architecture must be the
    config's; every field that differs is listed."""
    payload = load_checkpoint(config.init_from)
    try:
        source = TrainConfig.from_checkpoint(payload["config"])
        state = {k.removeprefix("backbone."): v for k, v in payload["model"].items() if k.startswith("backbone.")}
    except (KeyError, TypeError, AttributeError, ValueError, InputError) as exc:
        raise CheckpointError(f"{config.init_from}: not a complete anil-edge checkpoint ({exc})") from None
    differ = [f"{f} {getattr(source, f)!r} (this run: {getattr(config, f)!r})" for f in ARCHITECTURE
              if getattr(source, f) != getattr(config, f)]
    if differ:
        raise CheckpointError(f"init_from {config.init_from}: its backbone is another architecture: {'; '.join(differ)}; "
                              "train with the same backbone settings")
    model.backbone.load_state_dict(state)


def parameter_groups(model: AnilModel, config: TrainConfig) -> list[dict]:
    """The outer loop's Adam groups: the head (and the cosine scale) at ``meta_lr``, the backbone's
    trainable weights at ``meta_lr * backbone_lr_scale`` (one group when the scale is 1)."""
    trainable = [p for p in model.parameters() if p.requires_grad]
    if config.backbone_lr_scale == 1.0:
        return [{"params": trainable}]
    inner = {id(p) for p in features_of(model.backbone).parameters()}
    return [{"params": [p for p in trainable if id(p) not in inner]},
            {"params": [p for p in trainable if id(p) in inner], "lr": config.meta_lr * config.backbone_lr_scale}]
