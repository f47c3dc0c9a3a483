"""What earlier anil-edge versions wrote differently, in one place: each older document is
rewritten as today's, which the one reader (:func:`.documents.from_document`) then checks like
any other.

Format 2 (anil-edge 0.2 before the calibrated head rule) had no ``adaptation.head_scale`` and
``adaptation.head_decay``: its head rule is today's with scale 1 and no pull
(:func:`upgrade_adaptation`).

Format 1 (anil-edge 0.1) of the model metadata and of the enrollment state:

- The inner loop was ``head.{init, lr, steps}`` beside the learned ``head.{weight, bias}``
  (metadata) and ``settings.{head_init, lr, steps, threshold}`` (state), with the head rules
  below (``"mean"`` is the device form of today's ``"learned"``).
- The data split lived under ``extra.data`` and the dataset under ``training.dataset``
  (metadata); there was no crop (``"squash"``).

A key format 1 lacks stays missing, so that the reader names it.

Training checkpoints, TOML files and flags of 0.1 (:data:`RENAMED_CONFIG_FIELDS`,
:data:`CONFIG_FIELDS_BEFORE`, :data:`CHECKPOINT_PREPROCESSING_BEFORE`, :data:`RENAMED_FLAGS`), the
speed options of checkpoints written before they were timed (:func:`speed_before_timing`) and the
data sources of models exported before 0.2.0 (:func:`model_source`) are read here too.

Each shim goes when its format is no longer read: format 1 and 0.1's names at 0.4.0, format 2
when format 3 is the oldest a release reads.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .documents import to_document
from .metadata import DataProvenance

# format 1's names for the head's starting rule -> today's Adaptation.head_init
V1_HEAD_INITS = {"zeros": "zeros", "mean": "learned", "prototype": "prototype"}
_V1_INNER_LOOP = {"lr": "adaptation_lr", "steps": "adaptation_steps", "init": "head_init"}  # metadata's head.*
_V1_SETTINGS = {"lr": "adaptation_lr", "steps": "adaptation_steps", "head_init": "head_init"}  # state's settings.*


# what format 2's inner loop was, in format 3's fields (removed when format 2 is no longer read)
V2_ADAPTATION_DEFAULTS = {"head_scale": 1.0, "head_decay": 0.0}

# -- training configuration, checkpoints and flags of 0.1 (removed at 0.4.0) ------------------
RENAMED_CONFIG_FIELDS = {"fast_lr": "adaptation_lr"}  # old TrainConfig field -> new (checkpoints, TOML files)
CONFIG_FIELDS_BEFORE = {"sampler": "learn2learn", "embedding": "raw"}  # fields 0.1 lacked: what it trained with
CHECKPOINT_PREPROCESSING_BEFORE = {"crop": "squash", "crop_pct": 1.0}  # 0.1 checkpoints have no crop keys
RENAMED_FLAGS = {"data": ("--data-root",), "adaptation_lr": ("--fast-lr",)}  # field -> its flags of 0.1


def speed_before_timing(precision: str, channels_last: bool | None, chunk: int, cpu: bool) -> dict[str, Any]:
    """The speed options a checkpoint written before they were timed ran with (bf16 and chunks of
    128 on every CPU), as ``SpeedOptions`` fields."""
    return {"precision": "bf16" if precision == "bf16" or (precision == "auto" and cpu) else "fp32",
            "channels_last": True if channels_last is None else channels_last,
            "chunk": chunk if chunk >= 0 else (128 if cpu else 0)}


def model_source(source: str, model_folder: Path) -> str:
    """A data source an exported model records: relative to the model's folder since 0.2.0, as
    given (relative to the training folder) before."""
    beside_model = model_folder / source  # an absolute source stays itself
    return str(beside_model) if beside_model.exists() else source


def upgrade_adaptation(doc: Any) -> Any:
    """A format-2 metadata document or version-2 state header as format 3: its ``adaptation``
    gains scale 1 and no pull (anything but an object is returned as is)."""
    if not isinstance(doc, dict) or not isinstance(doc.get("adaptation"), dict):
        return doc
    return {**doc, "adaptation": {**V2_ADAPTATION_DEFAULTS, **doc["adaptation"]}}


def upgrade_metadata(doc: Any) -> Any:
    """A format-1 metadata document as format 2 (anything but an object is returned as is)."""
    if not isinstance(doc, dict):
        return doc
    new = {k: v for k, v in doc.items() if k != "head"}
    head = _object(doc.get("head"))
    new["adaptation"] = _adaptation(head, _V1_INNER_LOOP)
    new["learned_head"] = {k: head[k] for k in ("weight", "bias") if k in head}
    extra, training = dict(_object(doc.get("extra"))), dict(_object(doc.get("training")))
    data, dataset = extra.pop("data", None), training.pop("dataset", None)
    if isinstance(doc.get("extra"), dict):
        new["extra"] = extra
    if isinstance(data, dict):
        training["data"] = {"dataset": dataset, **data}
    elif isinstance(dataset, str):
        training["data"] = to_document(DataProvenance(dataset))
    if isinstance(doc.get("training"), dict):
        new["training"] = training
    if isinstance(doc.get("preprocessing"), dict):
        new["preprocessing"] = {"crop": "squash", "crop_pct": 1.0, **doc["preprocessing"]}
    return new


def upgrade_state_header(header: dict[str, Any]) -> dict[str, Any]:
    """A version-1 state header as version 2."""
    settings = _object(header.get("settings"))
    new = {k: v for k, v in header.items() if k != "settings"}
    new["adaptation"] = _adaptation(settings, _V1_SETTINGS)
    if "threshold" in settings:
        new["threshold"] = settings["threshold"]
    return new


def _adaptation(values: dict[str, Any], names: dict[str, str]) -> dict[str, Any]:
    out = {new: values[old] for old, new in names.items() if old in values}
    if isinstance(out.get("head_init"), str):
        out["head_init"] = V1_HEAD_INITS.get(out["head_init"], out["head_init"])
    return out


def _object(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}
