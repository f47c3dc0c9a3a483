"""Shared fixtures: a tiny seeded Conv-4 exported once per session. Plain helpers live in
``tests/helpers.py`` (and each folder's ``helpers.py``); test modules never import test modules."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile

os.environ.setdefault("OMP_NUM_THREADS", "1")
# Caches (the timed speed options, rendered glyphs) in a folder of this run: no test reads what an
# earlier run, or the user, left in ~/.cache/anil-edge.
if "ANIL_EDGE_CACHE" not in os.environ:
    os.environ["ANIL_EDGE_CACHE"] = tempfile.mkdtemp(prefix="anil-edge-test-cache-")
    atexit.register(shutil.rmtree, os.environ["ANIL_EDGE_CACHE"], ignore_errors=True)

import pytest

from tests.helpers import DIM, GRAY, TINY_ADAPTATION, TINY_TRAINING, tiny_head  # noqa: F401  (fixtures use them)


@pytest.fixture(scope="session")
def torch_backbone():
    """A seeded Conv-4 with 32 channels on 28×28 grayscale: 32-d embeddings, eval mode."""
    torch = pytest.importorskip("torch")
    from anil_edge.train.backbones import BackboneConfig, CNN4Backbone
    from tests.train.helpers import randomise_bn

    torch.manual_seed(0)
    torch.set_num_threads(1)
    model = CNN4Backbone(BackboneConfig(channels=1, input_size=28, hidden=32, blocks=4)).eval()
    randomise_bn(model)  # non-trivial BatchNorm statistics, so that eval mode matters
    assert model.embedding_dim == DIM
    return model


@pytest.fixture(scope="session")
def model_path(torch_backbone, tmp_path_factory):
    """The tiny backbone exported to ONNX with anil-edge metadata."""
    from anil_edge.export.onnx_export import export_onnx

    path = tmp_path_factory.mktemp("model") / "tiny.onnx"
    export_onnx(torch_backbone, path, preprocessing=GRAY, adaptation=TINY_ADAPTATION, learned_head=tiny_head(),
                training=TINY_TRAINING)
    return path


@pytest.fixture(scope="session")
def backbone(model_path):
    from anil_edge.runtime import Backbone

    return Backbone(model_path, intra_op_threads=1, inter_op_threads=1)


