"""Export writes a loadable, self-describing ONNX model atomically."""

from __future__ import annotations

import numpy as np
import onnx
import pytest

from anil_edge.errors import ModelError
from anil_edge.export.onnx_export import export_onnx, graph_sha256
from anil_edge.runtime.metadata_props import FORMAT_VERSION, VERSION_KEY, metadata_from_props, metadata_to_props
from tests.helpers import GRAY, TINY_ADAPTATION, TINY_TRAINING, tiny_head


def _props(model) -> dict[str, str]:
    return {p.key: p.value for p in model.metadata_props}


def test_metadata_round_trips_exactly(model_path):
    props = _props(onnx.load(str(model_path)))
    assert props[VERSION_KEY] == str(FORMAT_VERSION)
    meta = metadata_from_props(props)
    again = metadata_from_props(metadata_to_props(meta))
    assert again.preprocessing == meta.preprocessing == GRAY
    assert again.adaptation == meta.adaptation == TINY_ADAPTATION
    assert again.training == meta.training == TINY_TRAINING
    np.testing.assert_array_equal(again.learned_head.weight, tiny_head().weight)  # bit-exact
    np.testing.assert_array_equal(again.learned_head.bias, tiny_head().bias)
    assert metadata_to_props(again) == metadata_to_props(meta)


def test_hash_covers_the_graph_but_not_the_metadata(model_path):
    model = onnx.load(str(model_path))
    meta = metadata_from_props(_props(model))
    assert graph_sha256(model) == meta.backbone_sha256
    model.graph.initializer[0].raw_data = bytes(len(model.graph.initializer[0].raw_data))
    assert graph_sha256(model) != meta.backbone_sha256
    onnx.checker.check_model(onnx.load(str(model_path)), full_check=True)


def test_unwritable_output_is_a_clear_error_and_leaves_nothing(torch_backbone, tmp_path):
    target = tmp_path / "missing-dir" / "m.onnx"
    with pytest.raises(ModelError, match="cannot write the model"):
        export_onnx(torch_backbone, target, preprocessing=GRAY, adaptation=TINY_ADAPTATION, learned_head=tiny_head(),
                    training=TINY_TRAINING)
    assert not target.parent.exists()
