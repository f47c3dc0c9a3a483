"""Named starting points for ``anil-edge train --preset NAME``: TrainConfig fields that a TOML
file (``--config``) and flags then override. Each is the best row of a measured table.

- ``photos``: EfficientNet-Lite0 with its ImageNet weights (the ``lite0`` extra) at 128 px, RGB,
  with its own preprocessing (bicubic, centre crop 0.875, mean/std 0.5) and the prototype head,
  meta-fine-tuned as a device is used: 400 iterations of 10-way 1-shot tasks drawn within one
  group, support and query by different drawers where the data records them
  (``train_tasks="deployment"``), BatchNorm statistics and the first four stages frozen, the
  backbone at a tenth of the head's learning rate, and ``best.pt`` chosen by the same protocol
  on validation classes, the backbone as it is (iteration 0) included: on data where
  meta-training does not pay, the preset ships the imprinted ImageNet backbone. The best row of
  the cross-design emoji benchmark (benchmarks/RESULTS.md, "Train as the device is used"; with
  the export's within-class whitening, "Within-class whitening", where seeds 0–2 are compared).
  ``--iterations 0`` is weight imprinting alone.
"""

from __future__ import annotations

from typing import Any

from ..errors import InputError

PRESETS: dict[str, dict[str, Any]] = {
    "photos": dict(backbone="timm:tf_efficientnet_lite0", pretrained="efficientnet-lite0", channels=3, input_size=128,
                   ways=10, shots=1, queries=1, meta_batch=4, iterations=400, eval_every=50, eval_tasks=200,
                   freeze_stages=4, backbone_lr_scale=0.1, train_tasks="deployment"),
}


def preset(name: str | None) -> dict[str, Any]:
    """The fields of preset ``name`` (none: empty)."""
    if name is None:
        return {}
    if name not in PRESETS:
        raise InputError(f"unknown preset {name!r}: expected one of {sorted(PRESETS)}")
    return dict(PRESETS[name])
