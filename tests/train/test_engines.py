"""The fast engine against learn2learn's MAML (the reference), and per-image embeddings."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("learn2learn")

from anil_edge.runtime.adaptation import Adaptation
from anil_edge.train.backbones import BackboneConfig
from anil_edge.train.batches import TaskBatch
from anil_edge.train.engines import fast_meta_loss, l2l_meta_loss
from anil_edge.train.model import AnilModel
from tests.tolerances import assert_f32_close, conv_terms, f32_tolerance
from tests.train.helpers import randomise_bn

TOL = 1e-5  # relative, normwise per parameter tensor (float32)


def _model(norm: str, ways: int = 5) -> AnilModel:
    torch.manual_seed(0)
    model = AnilModel(BackboneConfig(1, 28, hidden=8, blocks=3, norm=norm, groups=4), ways)
    if norm == "batch":
        model.eval()  # running statistics: a per-image function, as deployed
        randomise_bn(model)
    return model


def _batch(tasks: int = 3, ways: int = 5, shots: int = 2, queries: int = 3) -> TaskBatch:
    g = torch.Generator().manual_seed(1)
    labels = lambda k: torch.arange(ways).repeat_interleave(k).repeat(tasks, 1)  # noqa: E731
    return TaskBatch(torch.randn(tasks, ways * shots, 1, 28, 28, generator=g), labels(shots),
                     torch.randn(tasks, ways * queries, 1, 28, 28, generator=g), labels(queries))


def _loss_and_grads(engine, model, batch, inner):
    model.zero_grad()
    loss, acc = engine(model, batch, inner)
    loss.backward()
    return loss.item(), acc.item(), [torch.zeros_like(p) if p.grad is None else p.grad.clone() for p in model.parameters()]


@pytest.mark.parametrize("norm", ["group", "batch"])
@pytest.mark.parametrize("head_init", ["learned", "zeros", "prototype"])
def test_fast_engine_matches_learn2learn(norm, head_init):
    """float32: loss and the whole meta-gradient within 1e-5 (normwise, relative)."""
    model, batch = _model(norm), _batch()
    inner = Adaptation(adaptation_lr=0.4, adaptation_steps=3, head_init=head_init)
    fast = _loss_and_grads(fast_meta_loss, model, batch, inner)
    ref = _loss_and_grads(l2l_meta_loss, model, batch, inner)
    assert fast[0] == pytest.approx(ref[0], rel=TOL)
    assert fast[1] == pytest.approx(ref[1])
    g_fast, g_ref = torch.cat([g.flatten() for g in fast[2]]), torch.cat([g.flatten() for g in ref[2]])
    assert float((g_fast - g_ref).norm() / g_ref.norm()) < TOL


@pytest.mark.parametrize("head_init, scale, decay", [("learned", 1.0, 0.0), ("prototype", 1.0, 0.0),
                                                     ("prototype", 0.5, 0.3)])
def test_fast_engine_matches_learn2learn_per_tensor_in_float64(head_init, scale, decay):
    """float64: every parameter's gradient agrees, also the near-zero ones (conv biases before a norm);
    with a scaled start and a pull, l2l adds the pull as a penalty on the support loss."""
    torch.set_default_dtype(torch.float64)
    try:
        model, batch = _model("group"), _batch()
        inner = Adaptation(adaptation_lr=0.4, adaptation_steps=3, head_init=head_init, head_scale=scale,
                           head_decay=decay)
        fast = _loss_and_grads(fast_meta_loss, model, batch, inner)
        ref = _loss_and_grads(l2l_meta_loss, model, batch, inner)
    finally:
        torch.set_default_dtype(torch.float32)
    assert fast[0] == pytest.approx(ref[0], rel=1e-12)
    problems = []
    for (name, _), a, b in zip(model.named_parameters(), fast[2], ref[2]):
        err = float((a - b).norm() / b.norm().clamp_min(1e-30))
        if err > 1e-9:
            problems.append(f"{name}: {err:.2e}")
    assert not problems, problems


def test_chunked_backbone_is_the_same_function():
    model, batch = _model("group"), _batch()
    inner = Adaptation(adaptation_lr=0.4, adaptation_steps=2, head_init="prototype")
    whole = _loss_and_grads(fast_meta_loss, model, batch, inner)
    model.chunk = 7
    chunked = _loss_and_grads(fast_meta_loss, model, batch, inner)
    assert chunked[0] == pytest.approx(whole[0], rel=f32_tolerance(whole[0], conv_terms(8, 3)) / abs(whole[0]))
    a, b = torch.cat([g.flatten() for g in chunked[2]]), torch.cat([g.flatten() for g in whole[2]])
    assert float((a - b).norm() / b.norm()) < TOL  # float32 sums in another order


@pytest.mark.parametrize("norm", ["group", "batch"])
def test_an_embedding_does_not_depend_on_its_batch(norm):
    """What the device computes: each image alone. Deployed models (eval mode) must agree."""
    model = _model(norm).eval()
    x = _batch().support.flatten(0, 1)
    with torch.no_grad():
        together = model.forward_features(x)
        alone = torch.cat([model.forward_features(x[i : i + 1]) for i in range(x.shape[0])])
        shuffled = model.forward_features(x.flip(0)).flip(0)
    # another batch size may take another kernel path (blocking, vector width): float32 rounding only
    assert_f32_close(alone, together, terms=conv_terms(8, 3))
    assert_f32_close(shuffled, together, terms=conv_terms(8, 3))


def test_batchnorm_in_train_mode_is_transductive():
    """The reason deployed accuracy is scored in eval mode: train-mode BN mixes the batch."""
    model = _model("batch").train()
    x = _batch().support.flatten(0, 1)
    with torch.no_grad():
        together = model.forward_features(x)[:2]
        pair = model.forward_features(x[:2])
    assert (together - pair).abs().max() > 1e-3
