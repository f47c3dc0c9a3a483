"""The exported head graphs against the numpy runtime and against torch autograd (≤ 1e-5
relative): random sizes, class counts from 1 to more than the training ways, every rule, step
counts and learning rates; and the classifier's ONNX engine against its numpy engine."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

ort = pytest.importorskip("onnxruntime")
torch = pytest.importorskip("torch")
pytest.importorskip("onnx")

from anil_edge.errors import AnilEdgeError, InputError, ModelError
from anil_edge.export.head_graphs import build_adapt_graph, build_classify_graph
from anil_edge.runtime import Backbone, FewShotClassifier
from anil_edge.runtime.adaptation import Adaptation
from anil_edge.runtime.episodes import class_means, fit_head
from anil_edge.runtime.head import predict_proba
from anil_edge.runtime.metadata import LearnedHead
from anil_edge.runtime.open_set import open_set_scores
from tests.helpers import glyphs
from tests.tolerances import HEAD_TERMS, assert_f32_close, conv_terms

TOL = 1e-5


def rel(got, want) -> float:
    return float(np.abs(np.asarray(got) - want).max() / max(1.0, float(np.abs(want).max())))


def torch_reference(E, y, C, a: Adaptation, learned: LearnedHead):
    """The head by autograd: the rule's start, then steps of SGD on F.cross_entropy."""
    Et, yt = torch.from_numpy(E).double(), torch.from_numpy(y)
    onehot = torch.nn.functional.one_hot(yt, C).double()
    means = onehot.T @ Et / onehot.sum(0)[:, None]
    if a.head_init == "prototype":
        W, b = 2 * means, -(means * means).sum(1)
    elif a.head_init == "zeros":
        W, b = torch.zeros_like(means), torch.zeros(C, dtype=torch.float64)
    else:
        W = torch.from_numpy(learned.weight).double().mean(0).expand(C, -1).clone()
        b = torch.full((C,), float(learned.bias.astype(np.float64).mean()), dtype=torch.float64)
    W0, b0 = a.head_scale * W, a.head_scale * b
    W, b = W0.clone().requires_grad_(), b0.clone().requires_grad_()
    for _ in range(a.adaptation_steps):
        pull = a.head_decay / 2 * ((W - W0).square().sum() + (b - b0).square().sum())
        gW, gb = torch.autograd.grad(torch.nn.functional.cross_entropy(Et @ W.T + b, yt) + pull, (W, b))
        W, b = (W - a.adaptation_lr * gW).detach().requires_grad_(), (b - a.adaptation_lr * gb).detach().requires_grad_()
    return W.detach().numpy(), b.detach().numpy()


@settings(max_examples=40, deadline=None)
@given(dim=st.integers(1, 40), n_classes=st.integers(1, 9), shots=st.integers(1, 3), queries=st.integers(1, 6),
       rule=st.sampled_from(["prototype", "zeros", "learned"]), steps=st.integers(0, 8),
       lr=st.floats(0.01, 1.0), seed=st.integers(0, 2**16), loop=st.booleans(),
       scale=st.sampled_from([1.0, 0.05, 3.0]), decay=st.sampled_from([0.0, 0.7]))
def test_graphs_equal_numpy_and_torch(dim, n_classes, shots, queries, rule, steps, lr, seed, loop, scale, decay):
    rng = np.random.default_rng(seed)
    learned = LearnedHead(rng.normal(0, 0.3, (5, dim)).astype(np.float32), rng.normal(0, 0.3, 5).astype(np.float32))
    a = Adaptation(lr, steps, rule, scale, decay)
    E = rng.normal(0, 1, (n_classes * shots, dim)).astype(np.float32)
    y = rng.permutation(np.repeat(np.arange(n_classes), shots))
    Q = rng.normal(0, 1, (queries, dim)).astype(np.float32)
    adapt = ort.InferenceSession(build_adapt_graph(a, learned, dim, loop=loop).SerializeToString())
    classify = ort.InferenceSession(build_classify_graph(dim).SerializeToString())
    W, b, means, problems = adapt.run(None, {"embeddings": E, "labels": y.astype(np.int64)})
    assert problems == 0  # well-formed labels
    _, P, score = classify.run(None, {"queries": Q, "weight": W, "bias": b, "class_means": means})
    Wn, bn = fit_head(E, y, n_classes, a, learned)
    Wt, bt = torch_reference(E, y, n_classes, a, learned)
    assert rel(W, Wn) <= TOL and rel(b, bn) <= TOL
    assert rel(W, Wt) <= TOL and rel(b, bt) <= TOL
    assert rel(P, predict_proba(Q, Wn, bn)) <= TOL
    assert rel(score, open_set_scores(Q, class_means(E, y, n_classes))) <= TOL


@pytest.fixture(scope="module")
def exported_with_graphs(model_path, tmp_path_factory):
    """The tiny model with its head graphs beside it, as anil-edge export writes them."""
    from anil_edge.export.deployment_files import write_deployment_files

    folder = tmp_path_factory.mktemp("graphs")
    path = folder / "model.onnx"
    path.write_bytes(model_path.read_bytes())
    files = write_deployment_files(path, lambda suffix: folder / f"model.{suffix}", pixels=True)
    return path, files


def test_the_classifier_onnx_engine_equals_the_numpy_engine(exported_with_graphs):
    path, _ = exported_with_graphs
    backbone = Backbone(path)
    images, labels = glyphs(4, 3, seed=12)
    results = {}
    for engine in ("numpy", "onnx"):
        clf = FewShotClassifier(backbone, engine=engine)
        clf.enroll_many(images[::3], labels[::3])
        results[engine] = clf.predict_proba(images), [p.score for p in clf.predict(images)]
    assert rel(results["onnx"][0], results["numpy"][0]) <= TOL
    assert rel(results["onnx"][1], np.array(results["numpy"][1])) <= TOL


def test_the_onnx_engine_refuses_settings_it_cannot_run(exported_with_graphs, model_path):
    path, _ = exported_with_graphs
    with pytest.raises(InputError, match="baked into the exported head graph"):  # at construction, not at predict
        FewShotClassifier(Backbone(path), engine="onnx", adaptation_steps=2)
    clf = FewShotClassifier(Backbone(path), engine="onnx")
    with pytest.raises(InputError, match="baked into the exported head graph"):
        clf.configure(adaptation_steps=2)
    assert clf.adaptation == Backbone(path).metadata.adaptation  # a refused configure changes nothing
    with pytest.raises(ModelError, match="needs the head graphs"):
        FewShotClassifier(Backbone(model_path), engine="onnx")
    with pytest.raises(InputError, match="engine must be one of"):
        FewShotClassifier(Backbone(model_path), engine="torch")


def test_the_pixel_model_embeds_raw_uint8_like_the_runtime(exported_with_graphs):
    path, files = exported_with_graphs
    session = ort.InferenceSession(str(files["backbone_pixels"]))
    images, _ = glyphs(3, 2, seed=2)
    assert_f32_close(session.run(None, {"pixels": images[..., None]})[0], Backbone(path).embed(images),
                     terms=conv_terms(32, 4))


@pytest.mark.parametrize("labels, match", [
    ([0, 5], "every class present"), ([0, -1], "every class present"), ([], "N >= 1"),
    ([0.0, 1.0], "class indices"), ([0, 1, 1], "N >= 1 class indices"),
], ids=["gap", "negative", "empty", "float", "count"])
def test_the_head_graph_contract_is_enforced_in_python(exported_with_graphs, labels, match):
    """What the adapt graph would turn into NaN (a missing class) or another class (-1, which
    indexing wraps), the ONNX engine refuses as the numpy engine does."""
    from anil_edge.runtime.head_sessions import HeadGraphs

    path, _ = exported_with_graphs
    graphs = HeadGraphs(path)
    E = np.random.default_rng(0).normal(size=(2 if len(labels) != 0 else 0, Backbone(path).embedding_dim))
    with pytest.raises(InputError, match=match):
        graphs.adapt(E.astype(np.float32), np.asarray(labels))


def test_onnxruntime_failures_in_the_head_graphs_are_model_errors(exported_with_graphs):
    from anil_edge.runtime.head_sessions import HeadGraphs

    path, _ = exported_with_graphs
    graphs = HeadGraphs(path)
    wrong_width = np.zeros((2, Backbone(path).embedding_dim + 3), np.float32)
    with pytest.raises(ModelError, match="the head graph refused its inputs"):
        graphs.adapt(wrong_width, np.array([0, 1]))


def test_a_sidecar_nested_beyond_any_parser_is_one_line(exported_with_graphs, tmp_path):
    """model.json is read by engine="onnx": JSON nested 100,000 deep was a raw RecursionError."""
    import shutil

    from anil_edge.runtime.head_sessions import HeadGraphs

    path, _ = exported_with_graphs
    for f in path.parent.iterdir():
        shutil.copy(f, tmp_path / f.name)
    (tmp_path / "model.json").write_text("[" * 100_000)
    with pytest.raises(ModelError, match="model.json: not a readable anil-edge sidecar .*nested deeper"):
        HeadGraphs(tmp_path / "model.onnx")


@settings(max_examples=25, deadline=None)
@given(classes=st.integers(1, 5), shots=st.integers(1, 3), log_scale=st.floats(-3, 6), seed=st.integers(0, 10**6),
       queries=st.integers(0, 4), width=st.sampled_from([0, 3]))
def test_the_onnx_engine_answers_as_the_numpy_engine_or_fails_the_same_way(exported_with_graphs, classes, shots,
                                                                          log_scale, seed, queries, width):
    """Random enrollments (embeddings of magnitude 1e-3 .. 1e6, sometimes of the wrong width,
    sometimes no queries): both engines agree within float32 rounding or raise the same class.
    Beyond ±1e4 (MAX_EMBEDDING_ABS) the inner loop's steps part between engines (measured: from
    1e5), so the door refuses such embeddings for both."""
    path, _ = exported_with_graphs
    backbone = Backbone(path)
    rng = np.random.default_rng(seed)
    dim = backbone.embedding_dim + width
    E = (rng.normal(size=(classes * shots, dim)) * 10.0**log_scale).astype(np.float32)
    Q = (rng.normal(size=(queries, dim)) * 10.0**log_scale).astype(np.float32)
    outcomes: dict = {}
    for engine in ("numpy", "onnx"):
        clf = FewShotClassifier(backbone, engine=engine)
        try:
            for c in range(classes):
                clf.enroll_embeddings(f"c{c}", E[c * shots:(c + 1) * shots])
            outcomes[engine] = (clf.fit()[0], clf.predict_proba_embeddings(Q))
        except Exception as exc:  # compared below: the same class, and never a raw error
            outcomes[engine] = type(exc)
    if isinstance(outcomes["numpy"], type):
        assert outcomes["onnx"] is outcomes["numpy"] and issubclass(outcomes["onnx"], AnilEdgeError)
        return
    assert not isinstance(outcomes["onnx"], type), outcomes["onnx"]
    (W, P), (W_onnx, P_onnx) = outcomes["numpy"], outcomes["onnx"]
    assert_f32_close(W_onnx, W, terms=HEAD_TERMS, what="weight")
    assert_f32_close(P_onnx, P, terms=HEAD_TERMS, scale=1.0, what="probabilities")


@pytest.mark.parametrize("scale", [1e-20, 1e20])
def test_the_classify_graph_scores_tiny_and_huge_embeddings_as_numpy_does(scale):
    """engine='onnx' and the numpy engine disagreed on 1e-20-scale embeddings (open-set score 0.000
    against 0.986): the graph now divides each row's largest entry out first, as numpy does."""
    rng = np.random.default_rng(3)
    Q, means = (rng.normal(0, 1, (n, 16)).astype(np.float32) * np.float32(scale) for n in (5, 3))
    W, b = rng.normal(0, 1, (3, 16)).astype(np.float32), np.zeros(3, np.float32)
    classify = ort.InferenceSession(build_classify_graph(16).SerializeToString())
    _, _, score = classify.run(None, {"queries": Q, "weight": W, "bias": b, "class_means": means})
    expected = open_set_scores(Q, means)
    assert np.abs(expected).max() > 0.1 and rel(score, expected) <= TOL


@pytest.mark.parametrize("rule", ["prototype", "learned"])
def test_the_adapt_graph_gives_defined_finite_results_for_any_labels(rule):
    """The adapt graph run directly, as a C++/Kotlin/Swift app does: a label of −1 (or past N) is
    ignored, as if the example were not given, instead of wrapping into the last class; a class
    with no example has probability 0 instead of NaN in every class; label_problems counts both,
    and is 0 for well-formed labels."""
    from anil_edge.runtime.export_files import ADAPT_CHECK, ADAPT_OUTPUTS, EMPTY_CLASS_BIAS

    rng = np.random.default_rng(0)
    a = Adaptation(adaptation_lr=0.5, adaptation_steps=3, head_init=rule, head_scale=2.0, head_decay=0.1)
    learned = LearnedHead(rng.standard_normal((5, 8)).astype(np.float32), rng.standard_normal(5).astype(np.float32))
    adapt = ort.InferenceSession(build_adapt_graph(a, learned, 8).SerializeToString())
    classify = ort.InferenceSession(build_classify_graph(8).SerializeToString())
    E = rng.standard_normal((5, 8)).astype(np.float32)
    names = [*ADAPT_OUTPUTS, ADAPT_CHECK]

    def run(labels):
        return dict(zip(names, adapt.run(names, {"embeddings": E[: len(labels)] if len(labels) < 5 else E,
                                                 "labels": np.asarray(labels, np.int64)})))

    clean = run([0, 1, 0, 1])
    assert clean[ADAPT_CHECK] == 0
    ignored = dict(zip(names, adapt.run(names, {"embeddings": np.concatenate([E[:4], E[4:]]),
                                                "labels": np.array([0, 1, 0, 1, -1], np.int64)})))
    assert ignored[ADAPT_CHECK] == 1
    for name in ADAPT_OUTPUTS:  # the −1 example changes nothing (within float rounding of N = 4 vs 5 rows)
        np.testing.assert_allclose(ignored[name], clean[name], rtol=1e-5, atol=1e-6)
    gapped = dict(zip(names, adapt.run(names, {"embeddings": E[:4], "labels": np.array([0, 0, 2, 2], np.int64)})))
    assert gapped[ADAPT_CHECK] == 1 and all(np.isfinite(gapped[n]).all() for n in ADAPT_OUTPUTS)
    assert gapped["bias"][1] <= EMPTY_CLASS_BIAS / 2 and not gapped["class_means"][1].any()
    _, P, score = classify.run(None, {"queries": E, "weight": gapped["weight"], "bias": gapped["bias"],
                                      "class_means": gapped["class_means"]})
    assert np.isfinite(P).all() and (P[:, 1] == 0).all() and np.isfinite(score).all()
    huge = dict(zip(names, adapt.run(names, {"embeddings": E[:2], "labels": np.array([0, 10**12], np.int64)})))
    assert huge["weight"].shape == (2, 8) and huge[ADAPT_CHECK] == 2  # C ≤ N: one ignored, one empty


def test_a_zero_step_rule_carries_no_unused_initializer():
    """The nearest-class-mean rule (0 steps) has no use for a step size: the graph must not carry
    one, as onnxruntime prints a warning for every unused initializer on every load."""
    a = Adaptation(adaptation_lr=0.5, adaptation_steps=0, head_init="prototype")
    model = build_adapt_graph(a, LearnedHead(np.zeros((2, 4), np.float32), np.zeros(2, np.float32)), 4)
    read = {name for node in model.graph.node for name in node.input}
    assert [init.name for init in model.graph.initializer if init.name not in read] == []
