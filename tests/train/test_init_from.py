"""``init_from``: meta-training that starts from another run's backbone (P>M>F's order: pre-train
on one data set, meta-train on another), refused when the architectures differ."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("learn2learn")

from anil_edge.errors import CheckpointError, InputError
from anil_edge.train.checkpoint import load_checkpoint
from anil_edge.train.model import build_model
from anil_edge.train.trainer import train

from .helpers import small_split, tiny_config


@pytest.fixture(scope="module")
def first_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("first")
    train(tiny_config(out, iterations=2), small_split())
    return out / "last.pt"


def test_the_backbone_starts_where_the_other_run_ended_and_the_head_starts_anew(first_run, tmp_path):
    saved = load_checkpoint(first_run)["model"]
    model = build_model(tiny_config(tmp_path, init_from=str(first_run), ways=5), pretrained=True)
    for name, value in model.backbone.state_dict().items():
        assert torch.equal(value, saved[f"backbone.{name}"]), name
    assert model.head.weight.shape == (5, model.embedding_dim)  # this run's ways, not the first run's 3
    fresh = build_model(tiny_config(tmp_path, ways=5), pretrained=True)
    assert not all(torch.equal(a, b) for a, b in zip(fresh.backbone.state_dict().values(),
                                                     model.backbone.state_dict().values()))


def test_another_architecture_is_refused_naming_each_difference(first_run, tmp_path):
    with pytest.raises(CheckpointError, match=r"another architecture: hidden 8 \(this run: 16\); embedding 'cosine' "
                                              r"\(this run: 'raw'\)"):
        build_model(tiny_config(tmp_path, init_from=str(first_run), hidden=16, embedding="raw"), pretrained=True)
    with pytest.raises(InputError, match="init_from .* and pretrained .* each give the starting weights"):
        tiny_config(tmp_path, init_from=str(first_run), pretrained="x.pt")
