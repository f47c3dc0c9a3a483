"""Named starting points for ``anil-edge train --preset NAME``: TrainConfig fields that a TOML
file (``--config``) and flags then override. Each is the best row of a measured table.

- ``photos``: EfficientNet-Lite0 with its ImageNet weights (the ``lite0`` extra) at 128 px, RGB,
  with its own preprocessing (bicubic, centre crop 0.875, mean/std 0.5) and the prototype head,
  and no meta-training (``iterations=0``: weight imprinting). The best row of the cross-design
  emoji benchmark (benchmarks/RESULTS.md, "Photos"): 79.2% 5-way and 58.8% 20-way 1-shot, where
  8 CPU minutes of ANIL meta-fine-tuning on the training emoji lowered it to 74.7% and 51.1%.
  ``--iterations N`` meta-fine-tunes with the settings of that row: BatchNorm statistics frozen,
  the stem and first stage frozen, the backbone at a tenth of the head's learning rate,
  10-way 1-shot tasks; keep it if it helps on your own validation classes.
"""

from __future__ import annotations

from typing import Any

from ..errors import InputError

PRESETS: dict[str, dict[str, Any]] = {
    "photos": dict(backbone="timm:tf_efficientnet_lite0", pretrained="efficientnet-lite0", channels=3, input_size=128,
                   ways=10, shots=1, queries=1, meta_batch=4, iterations=0, eval_every=50, eval_tasks=200,
                   freeze_stages=2, backbone_lr_scale=0.1),
}


def preset(name: str | None) -> dict[str, Any]:
    """The fields of preset ``name`` (none: empty)."""
    if name is None:
        return {}
    if name not in PRESETS:
        raise InputError(f"unknown preset {name!r}: expected one of {sorted(PRESETS)}")
    return dict(PRESETS[name])
