"""The ONNX backbone session: parity with PyTorch, batching, and every bad model file."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from anil_edge.errors import InputError, ModelError
from anil_edge.runtime import Backbone
from anil_edge.runtime.metadata_props import METADATA_KEY, VERSION_KEY
from tests.helpers import DIM, GRAY, glyphs, rewrite
from tests.tolerances import assert_f32_close, conv_terms

ONNX_TOL = 1e-5  # max abs difference, FP32 onnxruntime vs PyTorch eager


def test_embeddings_match_pytorch_with_the_models_own_preprocessing(backbone, torch_backbone):
    images, _ = glyphs(3, 3)
    got = backbone.embed(images)
    x = ((1 - images[:, None].astype(np.float32) / 255) - 0.1) / 0.5
    with torch.no_grad():
        ref = torch_backbone(torch.from_numpy(x)).numpy()
    assert got.shape == (9, DIM) and got.dtype == np.float32
    assert np.abs(got - ref).max() <= ONNX_TOL


def test_batching_and_single_images_give_the_same_embeddings(model_path, backbone):
    images, _ = glyphs(4, 4, seed=3)
    chunked = Backbone(model_path, batch_size=3, intra_op_threads=1)
    whole = backbone.embed(images)
    assert_f32_close(chunked.embed(images), whole, terms=conv_terms(32, 4))
    assert_f32_close(np.concatenate([backbone.embed(i) for i in images]), whole, terms=conv_terms(32, 4))


def test_metadata_is_read_from_the_model(backbone):
    meta = backbone.metadata
    assert meta.preprocessing == GRAY and meta.embedding_dim == DIM
    assert meta.adaptation.head_init == "learned" and meta.adaptation.adaptation_steps == 5
    assert meta.learned_head.weight.shape == (5, DIM)
    assert meta.training.ways == 5 and len(meta.backbone_sha256) == 64
    assert backbone.providers == ["CPUExecutionProvider"]


def edit_doc(edit):
    def mutate(props):
        doc = json.loads(props[METADATA_KEY])
        edit(doc)
        props[METADATA_KEY] = json.dumps(doc)

    return mutate


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda p: p.clear(), "carries no anil-edge metadata"),
        (lambda p: p.update({VERSION_KEY: "99"}), "format version '99'; this runtime reads versions 1, 2"),
        (lambda p: p.update({METADATA_KEY: "{not json"}), "not valid JSON"),
        (edit_doc(lambda d: d.pop("embedding_dim")), "missing field 'embedding_dim'"),
        (edit_doc(lambda d: d["preprocessing"].update(channels="one")), "preprocessing.channels must be an integer, found str"),
        (edit_doc(lambda d: d["adaptation"].update(head_init="magic")), "adaptation.head_init must be one of"),
        (edit_doc(lambda d: d["learned_head"]["weight"].update(base64="!!")), "learned_head.weight is not a base64 float32"),
        (edit_doc(lambda d: d.update(embedding_dim=10)), "head weight/bias must be \\(ways, 10\\)"),
        (edit_doc(lambda d: d["adaptation"].update(adaptation_steps=10**9)), "adaptation_steps must lie in"),
        (edit_doc(lambda d: d["adaptation"].update(adaptation_lr=3e38)), "adaptation_lr must be a finite number"),
        (edit_doc(lambda d: d["preprocessing"].update(input_size=[28.9, 28.2])),
         "preprocessing.input_size must be a list of 2 integers"),
        (edit_doc(lambda d: d["preprocessing"].update(invert="yes")), "preprocessing.invert must be a bool \\(true or false\\)"),
    ],
)
def test_bad_metadata_is_refused(model_path, tmp_path, mutate, message):
    with pytest.raises(ModelError, match=message):
        Backbone(rewrite(model_path, tmp_path, mutate))


def test_every_metadata_problem_is_listed_at_once(model_path, tmp_path):
    def many(d):
        d.pop("backbone_sha256")
        d["training"].pop("ways")
        d["preprocessing"]["invert"] = "yes"

    with pytest.raises(ModelError, match="3 problems") as info:
        Backbone(rewrite(model_path, tmp_path, edit_doc(many)))
    for field in ("backbone_sha256", "training.ways", "preprocessing.invert"):
        assert field in str(info.value)


def test_metadata_that_contradicts_the_graph_is_refused(model_path, tmp_path):
    def wrong_dim(d):
        d["embedding_dim"] = 64
        d["learned_head"]["weight"] = json.loads(json.dumps(d["learned_head"]["weight"]))
        w = np.zeros((5, 64), "<f4")
        import base64

        d["learned_head"]["weight"] = {"dtype": "float32", "shape": [5, 64], "base64": base64.b64encode(w.tobytes()).decode()}

    with pytest.raises(ModelError, match="embedding_dim=64"):
        Backbone(rewrite(model_path, tmp_path, edit_doc(wrong_dim))).embed(np.zeros((28, 28), np.uint8))


def test_missing_truncated_and_corrupted_files_are_clear_errors(model_path, tmp_path):
    with pytest.raises(ModelError, match="model file not found"):
        Backbone(tmp_path / "nope.onnx")
    data = model_path.read_bytes()
    (tmp_path / "truncated.onnx").write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelError, match="cannot load .*truncated.onnx as an ONNX model"):
        Backbone(tmp_path / "truncated.onnx")
    (tmp_path / "garbage.onnx").write_bytes(np.random.default_rng(0).bytes(4096))
    with pytest.raises(ModelError, match="cannot load .*garbage.onnx"):
        Backbone(tmp_path / "garbage.onnx")


def test_bad_options_are_clear_errors(model_path):
    with pytest.raises(InputError, match="device must be one of"):
        Backbone(model_path, device="tpu")
    with pytest.raises(InputError, match="batch_size must be an integer >= 1, found 0"):
        Backbone(model_path, batch_size=0)
    import onnxruntime

    if "CUDAExecutionProvider" not in onnxruntime.get_available_providers():
        with pytest.raises(ModelError, match="device='cuda' was asked for"):
            Backbone(model_path, device="cuda")


def test_embed_input_checks_the_preprocessed_batch(backbone):
    for bad in (np.zeros((0, 1, 28, 28), np.float32), np.zeros((2, 1, 28, 28)), np.zeros((2, 3, 28, 28), np.float32), [1]):
        with pytest.raises(InputError, match="expected a preprocessed float32 batch"):
            backbone.embed_input(bad)
