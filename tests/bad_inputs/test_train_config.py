"""TrainConfig: every field refuses values of the wrong type (a string is not a bool, a float
is not an int, a string is not a list) and out-of-range values, with one InputError naming it."""

from __future__ import annotations

from dataclasses import fields

import pytest

from anil_edge.errors import InputError
from anil_edge.train.config import TrainConfig

# One case per annotation shape the strict reader (runtime/documents.py) knows, each on one field:
# the message names the field, what it must be, and the type and value found. The reader is one
# function for every field, so a case per field would only repeat it.
SHAPES = {
    "bool": ("augment", "no", "augment must be a bool (true or false), found str 'no'"),
    "bool | None": ("rotations", 1, "rotations must be a bool (true or false), or unset, found int 1"),
    "int": ("ways", 2.5, "ways must be an integer, found float 2.5"),
    "float": ("meta_lr", "0.5", "meta_lr must be a number, found str '0.5'"),
    "float | None": ("crop_pct", [0.5], "crop_pct must be a number, or unset, found list [0.5]"),
    "str": ("dataset", 5, "dataset must be a string, found int 5"),
    "tuple[str, ...]": ("data", ("a", None), "data must be a list of strings, found tuple ('a', None)"),
}


def test_every_field_has_an_annotation_shape_the_reader_is_tested_on():
    assert {str(f.type) for f in fields(TrainConfig)} <= set(SHAPES)


@pytest.mark.parametrize("shape", SHAPES)
def test_a_value_of_the_wrong_type_is_refused(shape):
    name, bad, message = SHAPES[shape]
    with pytest.raises(InputError) as caught:
        TrainConfig(**{name: bad})
    assert caught.value.problems == [message]


def test_a_bool_is_not_an_integer():
    with pytest.raises(InputError, match="ways must be an integer, found bool True"):
        TrainConfig(ways=True)


OUT_OF_RANGE = [
    ("adaptation_lr", float("nan")), ("adaptation_lr", float("inf")), ("adaptation_lr", -0.1), ("adaptation_lr", 3e38),
    ("adaptation_steps", -1), ("adaptation_steps", 10**9), ("meta_lr", float("inf")), ("meta_lr", float("nan")),
    ("meta_lr", 0.0), ("meta_lr", -1.0), ("meta_lr", 1e6), ("ways", 1), ("ways", 0), ("shots", 0), ("queries", -3),
    ("hidden", 0), ("blocks", 0), ("meta_batch", 0), ("iterations", -1), ("eval_every", 0), ("eval_tasks", 0),
    ("checkpoint_every", 0), ("input_size", 0), ("task_streams", 0), ("dist_timeout", 0), ("channels", 2),
    ("channels", 4), ("validation_fraction", 0.0), ("validation_fraction", 1.0), ("test_fraction", -0.1),
    ("test_fraction", float("nan")), ("device", "bogus"), ("device", "cuda:x"), ("device", "gpu"), ("threads", -1),
    ("chunk", -2), ("dataset", "imagenet"), ("engine", "maml"), ("head_init", "mean"), ("head_init", "random"),
    ("schedule", "linear"), ("precision", "fp16"), ("norm", "layer"), ("backbone", "vit"), ("crop", "fill"),
    ("crop_pct", 0.0), ("crop_pct", 1.5), ("normalization", "batch"), ("resize", "cubic"),
    ("backbone", "timm:vit_base_patch16_224"), ("backbone", "timm:"), ("pretrained", "weights.pth"),
    ("freeze_stages", 3), ("backbone_lr_scale", -0.1), ("backbone_lr_scale", float("nan")),
    ("backbone_lr_scale", 1.5),
]


@pytest.mark.parametrize("name, bad", OUT_OF_RANGE, ids=[f"{n}={b!r}" for n, b in OUT_OF_RANGE])
def test_a_value_out_of_range_is_refused(name, bad):
    with pytest.raises(InputError, match=name):
        TrainConfig(**{name: bad})


INCONSISTENT = [
    (dict(input_size=3), "too small for 4 conv4 blocks"),
    (dict(input_size=8), "too small for 4 conv4 blocks"),
    (dict(blocks=10), "too small for 10 conv4 blocks"),
    (dict(backbone="resnet12", input_size=12), "too small for resnet12"),
    (dict(norm="group", hidden=60), "must divide hidden"),
    (dict(validation_fraction=0.5, test_fraction=0.5), "must leave training classes"),
    (dict(normalization="imagenet"), "needs channels=3"),
    (dict(backbone="timm:resnet18", input_size=64), "takes RGB images: expected channels=3"),
    (dict(backbone="timm:resnet18", channels=3), "input_size 28 is too small for timm:resnet18"),
    (dict(backbone="timm:resnet18", channels=3, input_size=64, freeze_stages=-1), r"freeze_stages must lie in \[0, 5\]"),
    (dict(backbone="timm:tf_efficientnet_lite0", channels=3, input_size=64, freeze_stages=9), r"in \[0, 8\] for timm"),
    (dict(normalization="backbone", channels=3), "needs a timm:NAME backbone"),
]


@pytest.mark.parametrize("changes, message", INCONSISTENT, ids=[str(c) for c, _ in INCONSISTENT])
def test_settings_that_contradict_each_other_are_refused(changes, message):
    with pytest.raises(InputError, match=message):
        TrainConfig(**changes)


@pytest.mark.parametrize("values, message", [
    ({"data": "abc"}, "data must be a list of strings"),
    ({"rotations": "no"}, "rotations must be a bool"),
    ({"learning_rate": 0.1}, "unknown training configuration key"),
    ({"fast_lr": "fast"}, "adaptation_lr must be a number"),  # the old name is read as the new one
])
def test_from_dict_keeps_types_strict(values, message):
    with pytest.raises(InputError, match=message):
        TrainConfig.from_dict(values)


def test_every_problem_is_listed_at_once():
    with pytest.raises(InputError) as info:
        TrainConfig(ways=1, shots=0, device="bogus")
    assert "3 problems" in str(info.value)
