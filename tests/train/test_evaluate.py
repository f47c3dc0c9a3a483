"""Meta-test scoring: the confidence interval, and training-time vs runtime head adaptation."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("learn2learn")

from anil_edge.runtime import head as np_head
from anil_edge.runtime.head_init import initial_head
from anil_edge.runtime.metadata import HeadSettings
from anil_edge.train.batches import BatchMaker
from anil_edge.train.engines import InnerLoop
from anil_edge.train.evaluate import evaluate, evaluate_transductive, sample_tasks, score_embedded, summarise
from anil_edge.train.model import AnilModel
from anil_edge.train.backbones import BackboneConfig

from .helpers import OMNI_PREP, glyph_set


def test_confidence_interval_is_the_standard_one():
    accs = np.array([0.5, 0.7, 0.9, 0.6, 0.8])
    result = summarise(accs)
    assert result.accuracy == pytest.approx(0.7)
    assert result.ci95 == pytest.approx(1.96 * np.std(accs, ddof=1) / np.sqrt(5))
    assert "70.00 ± " in str(result) and "(5 tasks)" in str(result)


@pytest.mark.parametrize("rule", ["prototype", "zeros", "learned"])
def test_training_scores_equal_the_runtime_head(rule):
    """Per-task accuracy from the torch evaluation = numpy runtime's head steps on the same embeddings."""
    torch.manual_seed(0)
    model = AnilModel(BackboneConfig(1, 28, 8, 2, norm="group", groups=4), ways=4).eval()
    data = glyph_set(n_classes=6, per_class=6)
    tasks = sample_tasks(data, ways=3, shots=2, queries=3, tasks=20, seed=0)  # 3 ≠ 4 ways: "learned" → mean
    E = torch.randn(data.images.shape[0], model.embedding_dim) * 0.2
    inner = InnerLoop(lr=0.3, steps=4, head_init=rule)
    result = score_embedded(model, E, tasks, inner, ways=3)
    settings = HeadSettings("mean", 0.3, 4, model.head.weight.detach().numpy(), model.head.bias.detach().numpy())
    runtime_rule = {"learned": "mean"}.get(rule, rule)  # deployed rule, also for C = ways
    expected = []
    for t in range(20):
        Es, Eq = E[tasks.support[t]].numpy(), E[tasks.query[t]].numpy()
        ys, yq = tasks.support_labels[t], tasks.query_labels[t]
        protos = np.stack([Es[ys == c].mean(0) for c in range(3)])
        W, b = initial_head(runtime_rule, settings, protos)
        W, b = np_head.adapt(Es, ys, W, b, lr=0.3, steps=4)
        expected.append(float(np_head.accuracy(Eq, yq, W, b)))
    np.testing.assert_allclose(result.per_task, expected, atol=1e-6)


def test_per_image_and_transductive_agree_without_batch_statistics():
    torch.manual_seed(0)
    model = AnilModel(BackboneConfig(1, 28, 8, 2, norm="group", groups=4), ways=3)
    data = glyph_set(n_classes=6, per_class=6)
    tasks = sample_tasks(data, ways=3, shots=1, queries=3, tasks=10, seed=1)
    maker = BatchMaker(data, OMNI_PREP, torch.device("cpu"))
    inner = InnerLoop(lr=0.5, steps=3, head_init="prototype")
    a = evaluate(model, maker, tasks, inner, 3)
    b = evaluate_transductive(model, maker, tasks, inner, 3)
    np.testing.assert_allclose(a.per_task, b.per_task)
    assert model.training  # restored


def test_transductive_scoring_leaves_batchnorm_statistics_alone():
    torch.manual_seed(0)
    model = AnilModel(BackboneConfig(1, 28, 8, 2, norm="batch"), ways=3).eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    data = glyph_set(n_classes=6, per_class=6)
    tasks = sample_tasks(data, ways=3, shots=1, queries=3, tasks=4, seed=1)
    evaluate_transductive(model, BatchMaker(data, OMNI_PREP, torch.device("cpu")), tasks,
                          InnerLoop(0.5, 2, "prototype"), 3)
    for k, v in model.state_dict().items():
        torch.testing.assert_close(v, before[k], rtol=0, atol=0)
    assert not model.training
