"""Exported models whose metadata is missing, mistyped or inconsistent: ModelError naming the
field, for every field of the document (generated from the document itself)."""

from __future__ import annotations

import json

import onnx
import pytest

from anil_edge.errors import ModelError
from anil_edge.runtime import Backbone
from anil_edge.runtime.metadata_props import METADATA_KEY, VERSION_KEY
from tests.bad_inputs.helpers import edit
from tests.helpers import rewrite


def _leaves(doc, prefix=()):
    for key, value in doc.items():
        if key == "extra":
            continue
        if isinstance(value, dict) and "base64" not in value:
            yield from _leaves(value, prefix + (key,))
        else:
            yield prefix + (key,)


def _props(path):
    return {p.key: p.value for p in onnx.load(str(path)).metadata_props}


def _write(model_path, tmp_path, props):
    """A copy of the model whose metadata_props are exactly ``props``."""
    return rewrite(model_path, tmp_path, lambda p: (p.clear(), p.update(props)))


@pytest.fixture(scope="module")
def document(model_path):
    return json.loads(_props(model_path)[METADATA_KEY])


def _paths():
    from tests.helpers import GRAY  # noqa: F401  (the fixture model's layout, documented in conftest)

    return ["anil_edge_version", "backbone_sha256", "embedding_dim", "preprocessing.input_size",
            "preprocessing.channels", "preprocessing.mean", "preprocessing.std", "preprocessing.invert",
            "preprocessing.resize", "preprocessing.crop", "preprocessing.crop_pct", "adaptation.adaptation_lr",
            "adaptation.adaptation_steps", "adaptation.head_init", "adaptation.head_scale", "adaptation.head_decay",
            "learned_head.weight", "learned_head.bias",
            "training.ways", "training.shots", "training.data.dataset", "training.data.sources",
            "training.data.validation_fraction", "training.data.test_fraction", "training.data.split_seed"]


PATHS = _paths()
WRONG = {"text": "x", "number": 3.5, "list": [1, "a"], "null": None, "object": {"a": 1}, "bool": True}


def test_the_paths_cover_every_field(document):
    assert sorted(".".join(p) for p in _leaves(document)) == sorted(PATHS)


@pytest.mark.parametrize("path", PATHS)
def test_a_missing_field_is_named(model_path, tmp_path, document, path):
    props = {**_props(model_path), METADATA_KEY: json.dumps(edit(document, path, delete=True))}
    with pytest.raises(ModelError, match=f"missing field '{path}'"):
        Backbone(_write(model_path, tmp_path, props))


STRINGS = {"anil_edge_version", "backbone_sha256", "preprocessing.resize", "preprocessing.crop", "adaptation.head_init",
           "training.data.dataset"}
VALID = {(p, "text") for p in STRINGS} | {("preprocessing.invert", "bool"), ("adaptation.adaptation_lr", "number"),
                                          ("adaptation.head_scale", "number"), ("adaptation.head_decay", "number")}
CASES = [(p, k) for p in PATHS for k in WRONG if (p, k) not in VALID]


@pytest.mark.parametrize("path, kind", CASES, ids=[f"{p}={k}" for p, k in CASES])
def test_a_field_of_the_wrong_type_is_refused(model_path, tmp_path, document, path, kind):
    value = WRONG[kind]
    edited = edit(document, path, value)
    props = {**_props(model_path), METADATA_KEY: json.dumps(edited)}
    try:
        Backbone(_write(model_path, tmp_path, props))
    except ModelError as exc:
        assert path.split(".")[-1] in str(exc) or "metadata" in str(exc)
        return
    pytest.fail(f"{path} = {value!r} was accepted")


@pytest.mark.parametrize("props", [{}, {VERSION_KEY: "2"}, {METADATA_KEY: "{}"}, {VERSION_KEY: "4", METADATA_KEY: "{}"},
                                   {VERSION_KEY: "two", METADATA_KEY: "{}"}, {VERSION_KEY: "2", METADATA_KEY: "[]"},
                                   {VERSION_KEY: "2", METADATA_KEY: "null"}, {VERSION_KEY: "2", METADATA_KEY: "{"},
                                   {VERSION_KEY: "2", METADATA_KEY: "[" * 100000}],
                         ids=["none", "no-document", "no-version", "future-version", "text-version", "a-list",
                              "null", "broken-json", "deeply-nested"])
def test_missing_or_foreign_metadata(model_path, tmp_path, props):
    with pytest.raises(ModelError):
        Backbone(_write(model_path, tmp_path, props))


INCONSISTENT = {
    "channels-2": ("preprocessing.channels", 2), "size-0": ("preprocessing.input_size", [0, 28]),
    "size-3": ("preprocessing.input_size", [28, 28, 1]), "std-0": ("preprocessing.std", [0.0]),
    "std-negative": ("preprocessing.std", [-1.0]), "mean-2": ("preprocessing.mean", [0.1, 0.2]),
    "resize-unknown": ("preprocessing.resize", "cubic"), "dim-0": ("embedding_dim", 0),
    "dim-wrong": ("embedding_dim", 31), "sha-short": ("backbone_sha256", "abc"),
    "steps-huge": ("adaptation.adaptation_steps", 10**9), "lr-huge": ("adaptation.adaptation_lr", 1e39),
    "lr-negative": ("adaptation.adaptation_lr", -0.5), "rule-mean": ("adaptation.head_init", "mean"),
    "weight-not-base64": ("learned_head.weight", {"dtype": "float32", "shape": [5, 32], "base64": "!!"}),
    "weight-short": ("learned_head.weight", {"dtype": "float32", "shape": [5, 32], "base64": "AAAA"}),
    "weight-negative-shape": ("learned_head.weight", {"dtype": "float32", "shape": [-5, 32], "base64": ""}),
    "weight-float-shape": ("learned_head.weight", {"dtype": "float32", "shape": [2.5, 32], "base64": ""}),
    "weight-nan": ("learned_head.weight", {"dtype": "float32", "shape": [1, 1], "base64": "AADAfw=="}),
}


@pytest.mark.parametrize("name", INCONSISTENT)
def test_values_that_contradict_the_model_or_each_other(model_path, tmp_path, document, name):
    path, value = INCONSISTENT[name]
    props = {**_props(model_path), METADATA_KEY: json.dumps(edit(document, path, value))}
    with pytest.raises(ModelError):
        Backbone(_write(model_path, tmp_path, props)).embed(__import__("numpy").zeros((28, 28), "uint8"))
