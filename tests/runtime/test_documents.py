"""The model-metadata document is derived from the dataclasses: its format-3 layout is frozen
here, so that renaming a field cannot silently change what every exported model carries. And
the one strict reader every record shares (``documents.from_document``), on small records."""

from __future__ import annotations

import json
from dataclasses import dataclass, replace

import numpy as np
import pytest

from anil_edge.errors import ModelError
from anil_edge.runtime.adaptation import Adaptation, HeadCalibration
from anil_edge.runtime.documents import describe, from_document, to_document, type_problems
from anil_edge.runtime.legacy import upgrade_metadata, upgrade_state_header
from anil_edge.runtime.metadata_props import metadata_document, metadata_from_props, metadata_to_props
from anil_edge.runtime.open_set import SCORE, OpenSetCalibration
from anil_edge.runtime.whitening import WhiteningCalibration

FORMAT_3_KEYS = {
    "anil_edge_version": None, "backbone_sha256": None, "embedding_dim": None, "extra": None,
    "preprocessing": {"input_size", "channels", "mean", "std", "invert", "resize", "crop", "crop_pct"},
    "adaptation": {"adaptation_lr", "adaptation_steps", "head_init", "head_scale", "head_decay"},
    "learned_head": {"weight", "bias"},
    "training": {"ways", "shots", "data"},
    "open_set": {"score", "thresholds", "true_accept", "episodes", "ways", "shots"},
    "head_calibration": {"protocols", "episodes", "candidates", "nearest_mean_accuracy", "best_rule", "best_accuracy",
                         "gain_ci95"},
    "whitening": {"fit_images", "fit_classes", "protocols", "episodes", "shrinkage", "candidates", "plain_accuracy",
                  "whitened_accuracy", "gain_ci95", "worst_protocol_gain"},
}
HEAD = HeadCalibration(("5-way 1-shot within group",), 200, 56, 0.8, "prototype start × 0.01, 50 steps of lr 0.02",
                       0.81, 0.004)
WHITE = WhiteningCalibration(4000, 1000, ("5-way 1-shot within group",), 200, 1.0, 4, 0.77, 0.82, 0.01, 0.02)


def test_the_document_has_the_format_3_layout_and_round_trips(backbone):
    calibration = OpenSetCalibration(SCORE, {0.01: 0.7, 0.05: 0.6}, {0.01: 0.8, 0.05: 0.9}, 100, 5, 1)
    meta = replace(backbone.metadata, open_set=calibration, extra={"precision": "fp32", "opset": 18},
                   adaptation=Adaptation(0.02, 50, "prototype", 0.01, 0.5), head_calibration=HEAD, whitening=WHITE)
    doc = json.loads(json.dumps(metadata_document(meta)))
    assert set(doc) == set(FORMAT_3_KEYS)
    for key, fields in FORMAT_3_KEYS.items():
        if fields is not None:
            assert set(doc[key]) == fields, key
    assert set(doc["training"]["data"]) == {"dataset", "sources", "validation_fraction", "test_fraction", "split_seed"}
    assert doc["learned_head"]["weight"]["dtype"] == "float32" and doc["open_set"]["thresholds"] == {"0.01": 0.7,
                                                                                                      "0.05": 0.6}
    back = metadata_from_props(metadata_to_props(meta))
    np.testing.assert_array_equal(back.learned_head.weight, meta.learned_head.weight)  # bit-exact
    assert back.open_set == calibration and back.preprocessing == meta.preprocessing and back.extra == meta.extra
    assert back.adaptation == meta.adaptation and back.head_calibration == HEAD and back.whitening == WHITE
    assert "open_set" not in metadata_document(replace(meta, open_set=None))  # absent, not null, when uncalibrated


# --- the one strict reader (documents.from_document), on small records -------------------

@dataclass(frozen=True)
class Inner:
    size: tuple[int, int]  # exactly two integers
    names: tuple[str, ...]  # any number of strings


@dataclass(frozen=True)
class Record:
    flag: bool
    count: int
    rate: float
    inner: Inner
    adaptation: Adaptation
    table: dict[float, float]
    maybe: float | None = None  # optional: may be absent
    rows: np.ndarray | None = None  # optional float32 array


GOOD = {"flag": True, "count": 3, "rate": 1, "inner": {"size": [2, 3], "names": ["a"]},
        "adaptation": {"adaptation_lr": 0.5, "adaptation_steps": 5, "head_init": "zeros",
                       "head_scale": 1.0, "head_decay": 0.0}, "table": {"0.5": 2}}


def read(doc, **kwargs):
    problems: list[str] = []
    return from_document(Record, doc, problems, **kwargs), problems


def test_a_document_is_read_into_typed_records():
    record, problems = read(GOOD)
    assert problems == []
    assert record.inner == Inner((2, 3), ("a",)) and record.rate == 1.0 and isinstance(record.rate, float)
    assert record.table == {0.5: 2.0} and record.maybe is None and record.rows is None
    rows = np.arange(6, dtype=np.float32).reshape(2, 3)
    again, problems = read(json.loads(json.dumps(to_document(replace(record, rows=rows)))))
    assert problems == [] and again.rows.dtype == np.float32
    np.testing.assert_array_equal(again.rows, rows)


@pytest.mark.parametrize("path, value, message", [
    ("flag", 1, "flag must be a bool (true or false), found int 1"),
    ("count", 3.0, "count must be an integer, found float 3.0"),
    ("count", True, "count must be an integer, found bool True"),
    ("rate", "1", "rate must be a number, found str '1'"),
    ("inner", [], "inner must be an object, found list []"),
    ("maybe", "x", "maybe must be a number, or unset, found str 'x'"),
    ("table", {"half": 1.0}, "table must be an object mapping numbers to numbers, found dict"),
    ("rows", {"shape": [2], "base64": "!!"}, "rows is not a base64 float32 array"),
    ("rows", {"dtype": "float32", "shape": [1], "base64": "AADAfw=="}, "rows holds NaN or infinite values"),
])
def test_each_field_is_read_strictly_and_named(path, value, message):
    record, problems = read({**GOOD, path: value})
    assert record is None and len(problems) == 1 and problems[0].startswith(message)


def test_nested_fields_are_named_by_their_path_and_every_problem_is_collected():
    doc = {**GOOD, "inner": {"size": [2], "names": "a"}, "count": "3"}
    del doc["flag"]
    _, problems = read(doc)
    assert problems == ["missing field 'flag'", "count must be an integer, found str '3'",
                        "inner.size must be a list of 2 integers, found list [2]",
                        "inner.names must be a list of strings, found str 'a'"]


def test_a_records_own_value_checks_are_named_by_its_path():
    _, problems = read({**GOOD, "adaptation": {**GOOD["adaptation"], "adaptation_steps": -1, "head_init": "mean"}})
    assert problems[0].startswith("adaptation.adaptation_steps must lie in [0, 1000]")
    assert problems[1].startswith("adaptation.head_init must be one of")


def test_defaults_and_unknown_keys():
    _, problems = read({"count": 1})
    assert "missing field 'rate'" in problems and not any("maybe" in p for p in problems)
    record, problems = from_document(Adaptation, {"head_init": "zeros", "newer_field": 1}, [], defaults=True), []
    assert record == Adaptation(head_init="zeros")  # missing keys take defaults; keys a newer writer added are ignored


def test_instances_are_checked_by_the_same_rules():
    assert type_problems(Inner((2, 3), ("a",))) == []
    assert type_problems(Inner([2, 3], ("a", 1))) == [  # type: ignore[arg-type]
        "size must be a list of 2 integers, found list [2, 3]", "names must be a list of strings, found tuple ('a', 1)"]
    assert describe(bool | None) == "a bool (true or false), or unset"
    assert describe(tuple[str | int, ...]) == "a list of strings or integers"


def test_format_1_documents_are_rewritten_keeping_what_is_missing_missing():
    v1 = {"head": {"lr": 0.5, "init": "mean", "weight": 1}, "training": {"dataset": "folder", "ways": 5},
          "preprocessing": {"channels": 1}, "extra": {"opset": 18}}
    doc = upgrade_metadata(v1)
    assert doc["adaptation"] == {"adaptation_lr": 0.5, "head_init": "learned"}  # steps stays missing: the reader names it
    assert doc["learned_head"] == {"weight": 1} and doc["extra"] == {"opset": 18}
    assert doc["training"] == {"ways": 5, "data": {"dataset": "folder", "sources": [], "validation_fraction": 0.15,
                                                   "test_fraction": 0.25, "split_seed": 0}}
    assert doc["preprocessing"] == {"crop": "squash", "crop_pct": 1.0, "channels": 1}
    assert upgrade_metadata([1]) == [1]
    header = upgrade_state_header({"version": 1, "labels": ["a"], "settings": {"lr": 0.1, "head_init": "mean",
                                                                               "threshold": 0.3}})
    assert header == {"version": 1, "labels": ["a"], "adaptation": {"adaptation_lr": 0.1, "head_init": "learned"},
                      "threshold": 0.3}


def test_format_2_models_and_states_read_as_scale_1_without_pull(backbone):
    """A format-2 model (no head_scale / head_decay) runs the rule it was exported with; format 3
    marks a model whose rule older runtimes would misread."""
    props = metadata_to_props(backbone.metadata)
    doc = json.loads(props["anil_edge.metadata"])
    for key in ("head_scale", "head_decay"):
        del doc["adaptation"][key]
    meta = metadata_from_props({"anil_edge.format_version": "2", "anil_edge.metadata": json.dumps(doc)})
    assert (meta.adaptation.head_scale, meta.adaptation.head_decay) == (1.0, 0.0)
    assert meta.adaptation.adaptation_steps == backbone.metadata.adaptation.adaptation_steps
    with pytest.raises(ModelError, match=r"format 3, named as format 3|adaptation.head_scale"):
        metadata_from_props({"anil_edge.format_version": "3", "anil_edge.metadata": json.dumps(doc)})
