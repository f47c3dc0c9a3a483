"""ANIL's inner loop as ONNX graphs, so that any onnxruntime binding (Kotlin, Swift, C++, C#,
JavaScript) can enroll classes with a plain inference session — no numpy, no training build.

Two graphs, built from the pieces below (each written once):

- **adapt** — ``embeddings`` (N, D) float32 and ``labels`` (N,) int64 in 0..C-1 → the adapted
  head ``weight`` (C, D), ``bias`` (C,) and the ``class_means`` (C, D), and ``label_problems``
  (int64 scalar). The model's own rule, learning rate and step count, logit scale and pull (its
  :class:`~anil_edge.runtime.adaptation.Adaptation`) are baked in; the steps are unrolled
  (``steps`` copies of one step's nodes).

  The contract for labels, the same in every binding, with defined finite results for any input:
  C = min(max(labels) + 1, N). An example whose label is outside 0..C−1 (−1, say) is ignored,
  as if not given (it would otherwise wrap into class C−1). A class with no example (a gap in the
  labels) gets a zero mean, a zero weight row and bias ``EMPTY_CLASS_BIAS`` (probability 0), not
  NaN in every class. ``label_problems`` counts the examples ignored plus the classes left empty:
  0 for well-formed labels, and an app should refuse any other count. Bounding C by N keeps a
  label of 10¹² from allocating a (N, 10¹²) one-hot.
- **classify** — ``queries`` (Q, D) with ``weight``, ``bias``, ``class_means`` →
  ``logits`` (Q, C), ``probabilities`` (Q, C) and ``open_set_score`` (Q,), the cosine
  similarity to the nearest class mean (:mod:`anil_edge.runtime.open_set`).

Two graphs rather than one because an app runs them at different times: adapt once when the
enrolled set changes (keeping W, b and the means), classify for every query.
The numpy runtime (:mod:`anil_edge.runtime.episodes`) is the reference; the export checks
these graphs against it before writing them.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import require
from ..runtime.adaptation import Adaptation
from ..runtime.export_files import (
    ADAPT_CHECK,
    ADAPT_INPUTS,
    ADAPT_OUTPUTS,
    CLASSIFY_INPUTS,
    CLASSIFY_OUTPUTS,
    EMPTY_CLASS_BIAS,
)
from ..runtime.metadata import LearnedHead
from .graph_builder import GraphBuilder

# -- the inner loop, once ---------------------------------------------------------------------


def _logits(g: GraphBuilder, E: str, W: str, b: str) -> str:
    """E Wᵀ + b: (N, C)."""
    return g.op("Add", g.op("MatMul", E, g.op("Transpose", W, perm=[1, 0])), b)


def _onehot(g: GraphBuilder, labels: str) -> tuple[str, str, str]:
    """onehot(labels) (N, C) float, with all-zero rows for labels outside 0..C−1; C =
    min(max(labels) + 1, N) as a (1,) int64; and which examples count, (N, 1) float 1/0."""
    n = g.op("Shape", labels)
    C = g.op("Min", g.op("Add", g.op("ReduceMax", labels, keepdims=1), g.const([1], np.int64)), n)
    valid = g.op("And", g.op("GreaterOrEqual", labels, g.const(0, np.int64)), g.op("Less", labels, C))
    mask = g.op("Unsqueeze", g.op("Cast", valid, to=g.onnx.TensorProto.FLOAT), g.const([1], np.int64))
    Y = g.op("Mul", g.op("OneHot", labels, C, g.const([0.0, 1.0]), axis=-1), mask)  # −1 would wrap to C−1
    return Y, C, mask


def _class_means(g: GraphBuilder, E: str, Y: str) -> tuple[str, str]:
    """Mean embedding per class, (Yᵀ E) / counts (C, D), zero for a class with no example; and
    which classes are empty, (C,) float 1/0."""
    counts = g.op("Transpose", g.op("ReduceSum", Y, g.const([0], np.int64), keepdims=1), perm=[1, 0])  # (C, 1)
    empty = g.op("Cast", g.op("Equal", counts, g.const(0.0)), to=g.onnx.TensorProto.FLOAT)
    means = g.op("Div", g.op("MatMul", g.op("Transpose", Y, perm=[1, 0]), E), g.op("Max", counts, g.const(1.0)))
    return means, g.op("Squeeze", empty, g.const([1], np.int64))


def _label_problems(g: GraphBuilder, mask: str, empty: str) -> str:
    """Examples ignored plus classes left empty, an int64 scalar (0 for well-formed labels)."""
    ignored = g.op("ReduceSum", g.op("Sub", g.const(1.0), mask), keepdims=0)
    total = g.op("Add", ignored, g.op("ReduceSum", empty, keepdims=0))
    return g.op("Cast", total, to=g.onnx.TensorProto.INT64)


def _initial_head(g: GraphBuilder, adaptation: Adaptation, learned: LearnedHead, means: str, C: str) -> tuple[str, str]:
    """The starting head by the rule, times ``head_scale``: prototype (2μ, −‖μ‖²), zeros, or the
    mean learned row (the numpy runtime's float32 products, in the same order)."""
    rule, scale = adaptation.head_init, np.float32(adaptation.head_scale)
    if rule == "prototype":
        norms = g.op("ReduceSum", g.op("Mul", means, means), g.const([1], np.int64), keepdims=0)
        return g.op("Mul", means, g.const(2 * scale)), g.op("Mul", norms, g.const(-scale))
    if rule == "zeros":
        return g.op("Mul", means, g.const(0.0)), g.op("ConstantOfShape", C, value=_zero_tensor(g))
    shape = g.op("Shape", means)
    row = g.const(scale * learned.weight.mean(axis=0, dtype=np.float32))
    return g.op("Expand", row, shape), g.op("Expand", g.const([scale * learned.bias.mean(dtype=np.float32)]), C)


def _step(g: GraphBuilder, E: str, Y: str, mask: str, inv_n: str, lr: str, W: str, b: str,
          pull: tuple[str, str, str] | None = None) -> tuple[str, str]:
    """One SGD step of the mean softmax cross-entropy over the examples that count (``mask``):
    G = (softmax(E Wᵀ + b) − Y) / N; with ``pull`` = (W₀, b₀, decay) the gradient gains
    ``decay·(θ − θ₀)``."""
    G = g.op("Mul", g.op("Mul", g.op("Sub", g.op("Softmax", _logits(g, E, W, b), axis=-1), Y), mask), inv_n)
    dW = g.op("MatMul", g.op("Transpose", G, perm=[1, 0]), E)
    db = g.op("ReduceSum", G, g.const([0], np.int64), keepdims=0)
    if pull is not None:
        W0, b0, decay = pull
        dW = g.op("Add", dW, g.op("Mul", g.op("Sub", W, W0), decay))
        db = g.op("Add", db, g.op("Mul", g.op("Sub", b, b0), decay))
    return g.op("Sub", W, g.op("Mul", dW, lr)), g.op("Sub", b, g.op("Mul", db, lr))


def _loop(g: GraphBuilder, steps: int, E: str, Y: str, mask: str, inv_n: str, lr: str, W: str, b: str,
          pull: tuple[str, str, str] | None) -> tuple[str, str]:
    """The same step as the body of an ONNX Loop run ``steps`` times (outer values captured)."""
    onnx = g.onnx
    body = GraphBuilder(onnx)
    body.count = 10_000  # names distinct from the outer graph's
    W_out, b_out = _step(body, E, Y, mask, inv_n, lr, "W_in", "b_in", pull)
    body.rename("cond_in", "cond_out")
    body.rename(W_out, "W_out")
    body.rename(b_out, "b_out")
    f = onnx.TensorProto.FLOAT
    graph = onnx.helper.make_graph(
        body.nodes, "step", [_value(onnx, "i", onnx.TensorProto.INT64, []), _value(onnx, "cond_in", onnx.TensorProto.BOOL, []),
                             _value(onnx, "W_in", f, None), _value(onnx, "b_in", f, None)],
        [_value(onnx, "cond_out", onnx.TensorProto.BOOL, []), _value(onnx, "W_out", f, None), _value(onnx, "b_out", f, None)],
        initializer=body.initializers)
    g.count += 1
    outs = [f"loop_W_{g.count}", f"loop_b_{g.count}"]
    g.nodes.append(onnx.helper.make_node("Loop", [g.const(steps, np.int64), g.const(True, np.bool_), W, b], outs,
                                         body=graph))
    return outs[0], outs[1]


def _cosine_to_nearest(g: GraphBuilder, Q: str, means: str) -> str:
    """max over classes of cos(q, μ_c): (Q,). Each row's largest entry is divided out before its
    norm, as :func:`anil_edge.runtime.open_set._unit` does: rows of 1e-20 then still have a
    cosine (not 0), and rows of 1e20 no overflowing squares."""
    def unit(x: str) -> str:
        axis = g.const([1], np.int64)
        x = g.op("Div", x, g.op("Max", g.op("ReduceMax", g.op("Abs", x), axis, keepdims=1), g.const(1e-30)))
        norm = g.op("ReduceL2", x, axis, keepdims=1)
        return g.op("Div", x, g.op("Max", norm, g.const(1e-12)))
    cosines = g.op("MatMul", unit(Q), g.op("Transpose", unit(means), perm=[1, 0]))
    return g.op("ReduceMax", cosines, g.const([1], np.int64), keepdims=0)


def _zero_tensor(g: GraphBuilder) -> Any:
    return g.onnx.helper.make_tensor("zero", g.onnx.TensorProto.FLOAT, [1], [0.0])


# -- the two graphs ---------------------------------------------------------------------------


def build_adapt_graph(adaptation: Adaptation, learned: LearnedHead, dim: int, opset: int = 18,
                      loop: bool = False) -> Any:
    """The adapt graph for ``dim``-d embeddings (see the module doc). ``loop=True`` runs the
    steps in an ONNX ``Loop`` instead of unrolling them (``anil-edge bench head`` compares them)."""
    onnx = require("onnx", "train")
    g = GraphBuilder(onnx)
    embeddings, labels = ADAPT_INPUTS
    Y, C, mask = _onehot(g, labels)
    means, empty = _class_means(g, embeddings, Y)
    W, b = _initial_head(g, adaptation, learned, means, C)
    b = g.op("Add", b, g.op("Mul", empty, g.const(EMPTY_CLASS_BIAS)))  # + 0 (exactly b) for every real class
    n = g.op("ReduceSum", mask, keepdims=0)  # the examples that count: N for well-formed labels
    inv_n, lr = g.op("Div", g.const(1.0), g.op("Max", n, g.const(1.0))), g.const(adaptation.adaptation_lr)
    pull = (W, b, g.const(adaptation.head_decay)) if adaptation.head_decay else None
    if loop:
        W, b = _loop(g, adaptation.adaptation_steps, embeddings, Y, mask, inv_n, lr, W, b, pull)
    else:
        for _ in range(adaptation.adaptation_steps):
            W, b = _step(g, embeddings, Y, mask, inv_n, lr, W, b, pull)
    for source, target in zip((W, b, means, _label_problems(g, mask, empty)), (*ADAPT_OUTPUTS, ADAPT_CHECK)):
        g.rename(source, target)
    f, i64 = onnx.TensorProto.FLOAT, onnx.TensorProto.INT64
    in_shapes: list[list[Any]] = [["N", dim], ["N"]]
    out_shapes: list[list[Any]] = [["C", dim], ["C"], ["C", dim]]
    inputs = [_value(onnx, name, t, s) for name, t, s in zip(ADAPT_INPUTS, (f, i64), in_shapes)]
    outputs = [_value(onnx, name, f, s) for name, s in zip(ADAPT_OUTPUTS, out_shapes)]
    outputs.append(_value(onnx, ADAPT_CHECK, i64, []))
    return g.model("anil_edge_head_adapt", inputs, outputs, opset)


def build_classify_graph(dim: int, opset: int = 18) -> Any:
    """The classify graph for ``dim``-d embeddings (see the module doc)."""
    onnx = require("onnx", "train")
    g = GraphBuilder(onnx)
    queries, weight, bias, class_means = CLASSIFY_INPUTS
    logits = _logits(g, queries, weight, bias)
    for source, target in zip((logits, g.op("Softmax", logits, axis=-1), _cosine_to_nearest(g, queries, class_means)),
                              CLASSIFY_OUTPUTS):
        g.rename(source, target)
    f = onnx.TensorProto.FLOAT
    in_shapes: list[list[Any]] = [["Q", dim], ["C", dim], ["C"], ["C", dim]]
    out_shapes: list[list[Any]] = [["Q", "C"], ["Q", "C"], ["Q"]]
    inputs = [_value(onnx, name, f, s) for name, s in zip(CLASSIFY_INPUTS, in_shapes)]
    outputs = [_value(onnx, name, f, s) for name, s in zip(CLASSIFY_OUTPUTS, out_shapes)]
    return g.model("anil_edge_head_classify", inputs, outputs, opset)


def _value(onnx: Any, name: str, kind: int, shape: list | None) -> Any:
    return onnx.helper.make_tensor_value_info(name, kind, shape)
