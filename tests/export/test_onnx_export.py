"""Export writes a loadable, self-describing ONNX model atomically."""

from __future__ import annotations

import numpy as np
import onnx
import pytest

from anil_edge.errors import ModelError
from anil_edge.export.onnx_export import export_onnx, graph_sha256
from anil_edge.runtime import ModelMetadata
from anil_edge.runtime.metadata import TrainingInfo
from tests.conftest import GRAY, tiny_settings


def test_metadata_round_trips_exactly(model_path):
    model = onnx.load(str(model_path))
    meta = ModelMetadata.from_props({p.key: p.value for p in model.metadata_props})
    again = ModelMetadata.from_props(meta.to_props())
    assert again.preprocessing == meta.preprocessing == GRAY
    np.testing.assert_array_equal(again.head.weight, tiny_settings().weight)  # bit-exact
    np.testing.assert_array_equal(again.head.bias, tiny_settings().bias)
    assert again.to_props() == meta.to_props()


def test_hash_covers_the_graph_but_not_the_metadata(model_path):
    model = onnx.load(str(model_path))
    meta = ModelMetadata.from_props({p.key: p.value for p in model.metadata_props})
    assert graph_sha256(model) == meta.backbone_sha256
    model.graph.initializer[0].raw_data = bytes(len(model.graph.initializer[0].raw_data))
    assert graph_sha256(model) != meta.backbone_sha256
    onnx.checker.check_model(onnx.load(str(model_path)), full_check=True)


def test_unwritable_output_is_a_clear_error_and_leaves_nothing(torch_backbone, tmp_path):
    target = tmp_path / "missing-dir" / "m.onnx"
    with pytest.raises(ModelError, match="cannot write the model"):
        export_onnx(torch_backbone, target, preprocessing=GRAY, head=tiny_settings(), training=TrainingInfo(5, 1, "t"))
    assert not target.parent.exists()
