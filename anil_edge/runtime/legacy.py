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
"""

from __future__ import annotations

from typing import Any

from .documents import to_document
from .metadata import DataProvenance

# format 1's names for the head's starting rule -> today's Adaptation.head_init
V1_HEAD_INITS = {"zeros": "zeros", "mean": "learned", "prototype": "prototype"}
_V1_INNER_LOOP = {"lr": "adaptation_lr", "steps": "adaptation_steps", "init": "head_init"}  # metadata's head.*
_V1_SETTINGS = {"lr": "adaptation_lr", "steps": "adaptation_steps", "head_init": "head_init"}  # state's settings.*


# what format 2's inner loop was, in format 3's fields (removed when format 2 is no longer read)
V2_ADAPTATION_DEFAULTS = {"head_scale": 1.0, "head_decay": 0.0}


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
