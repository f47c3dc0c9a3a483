"""Meta-test scoring: the confidence interval, and the training engines' inner loop against the
runtime's episode (the code every reported accuracy runs)."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from anil_edge.data.scoring import summarise
from anil_edge.data.tasks import fixed_tasks
from anil_edge.runtime.adaptation import Adaptation
from anil_edge.runtime.episodes import fit_head, predict_episodes
from anil_edge.train.backbones import BackboneConfig
from anil_edge.train.batches import BatchMaker
from anil_edge.train.evaluate import evaluate, evaluate_transductive
from anil_edge.train.inner_loop import adapt_heads, initial_heads
from anil_edge.train.model import AnilModel
from tests.tolerances import HEAD_TERMS, assert_f32_close

from .helpers import OMNI_PREP, glyph_set


def test_confidence_interval_is_the_standard_one():
    accs = np.array([0.5, 0.7, 0.9, 0.6, 0.8])
    result = summarise(accs)
    assert result.accuracy == pytest.approx(0.7)
    assert result.ci95 == pytest.approx(1.96 * np.std(accs, ddof=1) / np.sqrt(5))
    assert "70.00 ± " in str(result) and "(5 tasks)" in str(result)


@pytest.mark.parametrize("rule", ["prototype", "zeros", "learned"])
@pytest.mark.parametrize("n_classes", [3, 4])
def test_training_inner_loop_equals_the_runtime_episode(rule, n_classes):
    """The fast engine's heads (torch, differentiable) = the runtime's episode heads, for C = ways
    and C ≠ ways. Only ``learned`` with C = ways differs by design: training starts from the rows
    themselves, a device (any C, any class order) from their mean."""
    torch.manual_seed(0)
    model = AnilModel(BackboneConfig(1, 28, 8, 2, norm="group", groups=4), ways=4)
    adaptation = Adaptation(0.3, 4, rule)
    E = torch.randn(5, n_classes * 2, model.embedding_dim) * 0.3
    y = torch.arange(n_classes).repeat_interleave(2).repeat(5, 1)
    W0, b0 = initial_heads(rule, model.head.weight.detach(), model.head.bias.detach(), E, y, n_classes)
    W, b = adapt_heads(E, y, W0, b0, lr=0.3, steps=4)
    if rule == "learned" and n_classes == 4:
        torch.testing.assert_close(W0[0], model.head.weight.detach())
        return
    W_np, b_np = fit_head(E.numpy(), y.numpy(), n_classes, adaptation, model.learned_head())
    assert_f32_close(W, W_np, terms=HEAD_TERMS)
    assert_f32_close(b, b_np, terms=HEAD_TERMS, scale=float(np.abs(W_np).max()))


def test_evaluate_scores_the_runtime_episode_on_per_image_embeddings():
    torch.manual_seed(0)
    model = AnilModel(BackboneConfig(1, 28, 8, 2, norm="group", groups=4), ways=3).eval()
    data = glyph_set(n_classes=6, per_class=6)
    tasks = fixed_tasks(data, ways=3, shots=1, queries=3, tasks=10, seed=1)
    maker = BatchMaker(data, OMNI_PREP, torch.device("cpu"))
    adaptation = Adaptation(0.5, 3, "prototype")
    result = evaluate(model, maker, tasks, adaptation, 3)
    with torch.no_grad():
        E = torch.cat([model.forward_features(maker.images(np.array([i]))) for i in range(len(data.images))]).numpy()
    preds = predict_episodes(E, tasks, 3, adaptation, model.learned_head())
    np.testing.assert_allclose(result.per_task, (preds == tasks.query_labels).mean(-1))


def test_per_image_and_transductive_agree_without_batch_statistics():
    torch.manual_seed(0)
    model = AnilModel(BackboneConfig(1, 28, 8, 2, norm="group", groups=4), ways=3)
    data = glyph_set(n_classes=6, per_class=6)
    tasks = fixed_tasks(data, ways=3, shots=1, queries=3, tasks=10, seed=1)
    maker = BatchMaker(data, OMNI_PREP, torch.device("cpu"))
    adaptation = Adaptation(0.5, 3, "prototype")
    a = evaluate(model, maker, tasks, adaptation, 3)
    b = evaluate_transductive(model, maker, tasks, adaptation, 3)
    np.testing.assert_allclose(a.per_task, b.per_task)
    assert model.training  # restored


def test_transductive_scoring_leaves_batchnorm_statistics_alone():
    torch.manual_seed(0)
    model = AnilModel(BackboneConfig(1, 28, 8, 2, norm="batch"), ways=3).eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    data = glyph_set(n_classes=6, per_class=6)
    tasks = fixed_tasks(data, ways=3, shots=1, queries=3, tasks=4, seed=1)
    evaluate_transductive(model, BatchMaker(data, OMNI_PREP, torch.device("cpu")), tasks,
                          Adaptation(0.5, 2, "prototype"), 3)
    for k, v in model.state_dict().items():
        torch.testing.assert_close(v, before[k], rtol=0, atol=0)
    assert not model.training
