"""Exported models whose metadata is missing, mistyped or inconsistent: ModelError whose problems
name the field's path, what was found and what was expected: one case per class of fault."""

from __future__ import annotations

import json

import numpy as np
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


def _problems(model_path, tmp_path, document, path, value=None, *, delete=False) -> list[str]:
    """The problems a model whose metadata has ``path`` set to ``value`` (or deleted) is refused with."""
    props = {**_props(model_path), METADATA_KEY: json.dumps(edit(document, path, value, delete=delete))}
    with pytest.raises(ModelError) as caught:
        Backbone(_write(model_path, tmp_path, props)).embed(np.zeros((28, 28), "uint8"))
    return caught.value.problems


# The reader is one function for every field (runtime/documents.py), so one case per nesting depth
# and per annotation shape shows it names the field's path and says what it expected and found.
@pytest.mark.parametrize("path", ["embedding_dim", "preprocessing.crop_pct", "training.data.split_seed"])
def test_a_missing_field_is_named_by_its_path(model_path, tmp_path, document, path):
    assert _problems(model_path, tmp_path, document, path, delete=True) == [f"missing field '{path}'"]


WRONG_TYPE = {  # path: (value, the problem)
    "preprocessing.resize": (5, "preprocessing.resize must be a string, found int 5"),
    "embedding_dim": ("x", "embedding_dim must be an integer, found str 'x'"),
    "adaptation.adaptation_lr": ("x", "adaptation.adaptation_lr must be a number, found str 'x'"),
    "preprocessing.invert": (1, "preprocessing.invert must be a bool (true or false), found int 1"),
    "preprocessing.input_size": ([28], "preprocessing.input_size must be a list of 2 integers, found list [28]"),
    "preprocessing.mean": (["a"], "preprocessing.mean must be a list of numbers, found list ['a']"),
    "training.data.sources": ("abc", "training.data.sources must be a list of strings, found str 'abc'"),
    "training.data": ([1], "training.data must be an object, found list [1]"),
}


@pytest.mark.parametrize("path", WRONG_TYPE)
def test_a_field_of_the_wrong_type_is_refused(model_path, tmp_path, document, path):
    value, problem = WRONG_TYPE[path]
    assert _problems(model_path, tmp_path, document, path, value) == [problem]


@pytest.mark.parametrize("props", [{}, {VERSION_KEY: "2"}, {METADATA_KEY: "{}"}, {VERSION_KEY: "4", METADATA_KEY: "{}"},
                                   {VERSION_KEY: "two", METADATA_KEY: "{}"}, {VERSION_KEY: "2", METADATA_KEY: "[]"},
                                   {VERSION_KEY: "2", METADATA_KEY: "null"}, {VERSION_KEY: "2", METADATA_KEY: "{"},
                                   {VERSION_KEY: "2", METADATA_KEY: "[" * 100000}],
                         ids=["none", "no-document", "no-version", "future-version", "text-version", "a-list",
                              "null", "broken-json", "deeply-nested"])
def test_missing_or_foreign_metadata(model_path, tmp_path, props):
    with pytest.raises(ModelError):
        Backbone(_write(model_path, tmp_path, props))


INCONSISTENT = {  # one case per record's own check: path, value, the problem (a record checks its values when built)
    "channels": ("preprocessing.channels", 2, "preprocessing.channels must be 1 or 3, found 2"),
    "size": ("preprocessing.input_size", [0, 28], "preprocessing.input_size must be (height, width) >= 1, found (0, 28)"),
    "std": ("preprocessing.std", [0.0], "preprocessing.std must be > 0, found (0.0,)"),
    "mean": ("preprocessing.mean", [0.1, 0.2], "preprocessing.mean must have 1 values (one per channel), found 2"),
    "resize": ("preprocessing.resize", "cubic",
               "preprocessing.resize must be one of ('nearest', 'bilinear', 'bicubic', 'lanczos'), found 'cubic'"),
    "dim": ("embedding_dim", 31, "learned_head weight/bias must be (ways, 31) and (ways,), found (5, 32) and (5,)"),
    "sha": ("backbone_sha256", "abc", "backbone_sha256 must be 64 hex digits, found 'abc'"),
    "steps": ("adaptation.adaptation_steps", 10**9, "adaptation.adaptation_steps must lie in [0, 1000], found 1000000000"),
    "lr": ("adaptation.adaptation_lr", -0.5, "adaptation.adaptation_lr must be a finite number in [0, 1000], found -0.5"),
    "rule": ("adaptation.head_init", "mean",
             "adaptation.head_init must be one of ('prototype', 'zeros', 'learned'), found 'mean'"),
    "fraction": ("training.data.test_fraction", 1.0, "training.data.test_fraction must lie in [0, 1), found 1.0"),
    "weight-nan": ("learned_head.weight", {"dtype": "float32", "shape": [1, 1], "base64": "AADAfw=="},
                   "learned_head.weight holds NaN or infinite values"),
}


@pytest.mark.parametrize("name", INCONSISTENT)
def test_values_that_contradict_the_model_or_each_other(model_path, tmp_path, document, name):
    path, value, problem = INCONSISTENT[name]
    assert problem in _problems(model_path, tmp_path, document, path, value)


@pytest.mark.parametrize("weight", [{"dtype": "float32", "shape": [5, 32], "base64": "!!"},
                                    {"dtype": "float32", "shape": [5, 32], "base64": "AAAA"},
                                    {"dtype": "float32", "shape": [-5, 32], "base64": ""}],
                         ids=["not-base64", "short", "negative-shape"])
def test_an_array_that_is_not_what_it_declares_is_refused(model_path, tmp_path, document, weight):
    [problem] = _problems(model_path, tmp_path, document, "learned_head.weight", weight)
    assert problem.startswith("learned_head.weight is not a base64 float32 array (")
