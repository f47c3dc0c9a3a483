"""The model-metadata document is derived from the dataclasses: its format-2 layout is frozen
here, so that renaming a field cannot silently change what every exported model carries."""

from __future__ import annotations

import json

import numpy as np

from anil_edge.runtime.metadata_props import metadata_document, metadata_from_props, metadata_to_props
from anil_edge.runtime.open_set import SCORE, OpenSetCalibration

FORMAT_2_KEYS = {
    "anil_edge_version": None, "backbone_sha256": None, "embedding_dim": None, "extra": None,
    "preprocessing": {"input_size", "channels", "mean", "std", "invert", "resize", "crop", "crop_pct"},
    "adaptation": {"adaptation_lr", "adaptation_steps", "head_init"},
    "learned_head": {"weight", "bias"},
    "training": {"ways", "shots", "data"},
    "open_set": {"score", "thresholds", "true_accept", "episodes", "ways", "shots"},
}


def test_the_document_has_the_format_2_layout_and_round_trips(backbone):
    from dataclasses import replace

    calibration = OpenSetCalibration(SCORE, {0.01: 0.7, 0.05: 0.6}, {0.01: 0.8, 0.05: 0.9}, 100, 5, 1)
    meta = replace(backbone.metadata, open_set=calibration, extra={"precision": "fp32", "opset": 18})
    doc = json.loads(json.dumps(metadata_document(meta)))
    assert set(doc) == set(FORMAT_2_KEYS)
    for key, fields in FORMAT_2_KEYS.items():
        if fields is not None:
            assert set(doc[key]) == fields, key
    assert set(doc["training"]["data"]) == {"dataset", "sources", "validation_fraction", "test_fraction", "split_seed"}
    assert doc["learned_head"]["weight"]["dtype"] == "float32" and doc["open_set"]["thresholds"] == {"0.01": 0.7,
                                                                                                      "0.05": 0.6}
    back = metadata_from_props(metadata_to_props(meta))
    np.testing.assert_array_equal(back.learned_head.weight, meta.learned_head.weight)  # bit-exact
    assert back.open_set == calibration and back.preprocessing == meta.preprocessing and back.extra == meta.extra
    assert "open_set" not in metadata_document(replace(meta, open_set=None))  # absent, not null, when uncalibrated
