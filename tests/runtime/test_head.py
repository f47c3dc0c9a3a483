"""The numpy head steps against torch autograd and learn2learn's MAML (micrograd-style reference tests)."""

from __future__ import annotations

from unittest import mock

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from anil_edge.errors import InputError
from anil_edge.runtime import head

l2l = pytest.importorskip("learn2learn")
REL_TOL = 1e-5  # normwise relative error: max|a - ref| / max(1, max|ref|)


def rel_err(a, ref) -> float:
    a, ref = np.asarray(a, np.float64), np.asarray(ref, np.float64)
    return float(np.abs(a - ref).max() / max(1.0, np.abs(ref).max()))


def problem(seed, tasks, n, c, d, scale=1.0):
    rng = np.random.default_rng(seed)
    E = (rng.normal(size=(tasks, n, d)) * scale).astype(np.float32)
    y = rng.integers(0, c, size=(tasks, n))
    W = rng.normal(0, 0.3, (tasks, c, d)).astype(np.float32)
    b = rng.normal(0, 0.3, (tasks, c)).astype(np.float32)
    return E, y, W, b


def pull(w, bias, W0, b0, decay):
    """``decay/2 · ‖θ − θ₀‖²``, the pull toward the start whose gradient the steps add."""
    return decay / 2 * ((w - torch.from_numpy(W0)).square().sum() + (bias - torch.from_numpy(b0)).square().sum())


def torch_steps(E, y, W, b, lr, steps, decay=0.0):
    """The same SGD steps with torch autograd, task by task."""
    out_W, out_b = [], []
    for t in range(E.shape[0]):
        w = torch.tensor(W[t], requires_grad=True)
        bias = torch.tensor(b[t], requires_grad=True)
        e, labels = torch.from_numpy(E[t]), torch.from_numpy(y[t]).long()
        for _ in range(steps):
            loss = F.cross_entropy(e @ w.T + bias, labels) + pull(w, bias, W[t], b[t], decay)
            gw, gb = torch.autograd.grad(loss, (w, bias))
            w, bias = w - lr * gw, bias - lr * gb
        out_W.append(w.detach().numpy())
        out_b.append(bias.detach().numpy())
    return np.stack(out_W), np.stack(out_b)


def l2l_steps(E, y, W, b, lr, steps, decay=0.0):
    """learn2learn's reference: MAML(head, lr).clone() then adapt(loss), task by task."""
    out_W, out_b = [], []
    for t in range(E.shape[0]):
        linear = torch.nn.Linear(E.shape[-1], W.shape[-2])
        with torch.no_grad():
            linear.weight.copy_(torch.from_numpy(W[t]))
            linear.bias.copy_(torch.from_numpy(b[t]))
        learner = l2l.algorithms.MAML(linear, lr=lr).clone()
        e, labels = torch.from_numpy(E[t]), torch.from_numpy(y[t]).long()
        for _ in range(steps):
            m = learner.module
            learner.adapt(F.cross_entropy(learner(e), labels) + pull(m.weight, m.bias, W[t], b[t], decay))
        out_W.append(learner.module.weight.detach().numpy())
        out_b.append(learner.module.bias.detach().numpy())
    return np.stack(out_W), np.stack(out_b)


@settings(max_examples=30, deadline=None)
@given(
    seed=st.integers(0, 2**31 - 1),
    tasks=st.integers(1, 3),
    n=st.integers(1, 12),
    c=st.integers(1, 6),
    d=st.integers(1, 24),
    steps=st.integers(0, 8),
    lr=st.floats(1e-3, 2.0),
    decay=st.sampled_from([0.0, 0.05, 0.5]),  # lr · decay <= 1
)
@pytest.mark.parametrize("gram", [False, True], ids=["direct-kernel", "gram-kernel"])
def test_adapt_matches_torch_autograd_and_learn2learn(gram, seed, tasks, n, c, d, steps, lr, decay):
    E, y, W, b = problem(seed, tasks, n, c, d)
    with mock.patch.object(head, "_gram_is_cheaper", lambda *shape: gram):
        got_W, got_b = head.adapt(E, y, W, b, lr=lr, steps=steps, decay=decay)
    ref_W, ref_b = torch_steps(E, y, W, b, lr, steps, decay)
    l2l_W, l2l_b = l2l_steps(E, y, W, b, lr, steps, decay)
    assert got_W.shape == W.shape and got_b.shape == b.shape
    assert rel_err(got_W, ref_W) <= REL_TOL and rel_err(got_b, ref_b) <= REL_TOL
    assert rel_err(got_W, l2l_W) <= REL_TOL and rel_err(got_b, l2l_b) <= REL_TOL


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), n=st.integers(1, 16), c=st.integers(1, 8), d=st.integers(1, 32))
def test_loss_gradients_probabilities_match_torch(seed, n, c, d):
    E, y, W, b = (a[0] for a in problem(seed, 1, n, c, d, scale=3.0))
    w, bias = torch.tensor(W, requires_grad=True), torch.tensor(b, requires_grad=True)
    z = torch.from_numpy(E) @ w.T + bias
    loss = F.cross_entropy(z, torch.from_numpy(y).long())
    gw, gb = torch.autograd.grad(loss, (w, bias))
    dW, db = head.gradients(E, y, W, b)
    assert rel_err(head.cross_entropy(E, y, W, b), loss.item()) <= REL_TOL
    assert rel_err(dW, gw.numpy()) <= REL_TOL and rel_err(db, gb.numpy()) <= REL_TOL
    assert rel_err(head.predict_proba(E, W, b), torch.softmax(z, 1).detach().numpy()) <= REL_TOL
    expected_acc = (z.argmax(1).numpy() == y).mean()
    assert head.accuracy(E, y, W, b) == pytest.approx(expected_acc)


def test_batched_tasks_equal_one_task_at_a_time_and_share_a_head():
    E, y, W, b = problem(3, 4, 10, 5, 16)
    W_all, b_all = head.adapt(E, y, W[0], b[0], lr=0.4, steps=3)  # one head shared by all tasks
    assert W_all.shape == (4, 5, 16) and b_all.shape == (4, 5)
    for t in range(4):
        W_t, b_t = head.adapt(E[t], y[t], W[0], b[0], lr=0.4, steps=3)
        assert rel_err(W_all[t], W_t) <= REL_TOL and rel_err(b_all[t], b_t) <= REL_TOL
    losses = head.cross_entropy(E, y, W_all, b_all)
    assert losses.shape == (4,) and np.all(losses < head.cross_entropy(E, y, W[:1].repeat(4, 0), b[:1].repeat(4, 0)))


def test_float32_outputs_and_inputs_untouched():
    E, y, W, b = problem(0, 1, 6, 3, 8)
    W_before = W.copy()
    W1, b1 = head.adapt(E.astype(np.float64), y, W, b, lr=0.1, steps=2)
    assert W1.dtype == np.float32 and b1.dtype == np.float32
    np.testing.assert_array_equal(W, W_before)
    W0, _ = head.adapt(E, y, W, b, lr=0.1, steps=0)
    assert W0 is not W and np.array_equal(W0, W)


def test_extreme_logits_stay_finite():
    E = np.array([[1e4, -1e4], [-1e4, 1e4]], np.float32)
    W, b, y = np.eye(2, dtype=np.float32), np.zeros(2, np.float32), np.array([1, 0])
    assert np.isfinite(head.cross_entropy(E, y, W, b)) and head.cross_entropy(E, y, W, b) > 1e3
    assert np.all(np.isfinite(head.adapt(E, y, W, b, lr=1e-6, steps=3)[0]))
    np.testing.assert_allclose(head.softmax(np.array([[1000.0, 0.0]])), [[1.0, 0.0]])


@pytest.mark.parametrize(
    "change, message",
    [
        (dict(E=np.zeros((4, 7), np.float32)), "embeddings are 7-d"),
        (dict(b=np.zeros(4, np.float32)), "b has 4 entries"),
        (dict(y=np.array([0, 1, 2, 3])), "labels must lie in [0, 3)"),
        (dict(y=np.array([0.0, 1.0, 2.0, 1.0])), "labels must be integers"),
        (dict(y=np.array([0, 1])), "labels must have shape (4,)"),
        (dict(E=np.full((4, 8), np.nan, np.float32)), "must be finite"),
        (dict(E=np.zeros((0, 8), np.float32), y=np.zeros(0, int)), "no examples"),
        (dict(E=np.zeros(8, np.float32)), "must have 2 or 3 dimensions"),
        (dict(lr=float("nan")), "lr must be a finite number"),
        (dict(lr="0.5"), "lr must be a number, found str"),
        (dict(steps=-1), "steps must lie in [0, 1000]"),
        (dict(steps=10**9), "steps must lie in [0, 1000]"),
        (dict(steps=2.5), "steps must be an integer, found float"),
        (dict(steps=True), "steps must be an integer, found bool"),
    ],
)
def test_bad_inputs_raise_clear_errors(change, message):
    args = dict(E=np.ones((4, 8), np.float32), y=np.array([0, 1, 2, 1]), W=np.zeros((3, 8)), b=np.zeros(3), lr=0.1, steps=1)
    args.update(change)
    with pytest.raises(InputError, match=_escape(message)):
        head.adapt(args.pop("E"), args.pop("y"), args.pop("W"), args.pop("b"), **args)


def test_every_mismatch_is_reported_at_once():
    with pytest.raises(InputError) as info:
        head.logits(np.ones((4, 8)), np.zeros((3, 6)), np.zeros(5))
    assert "2 problems" in str(info.value) and "6" in str(info.value) and "5 entries" in str(info.value)


def _escape(text: str) -> str:
    import re

    return re.escape(text)


@pytest.mark.slow
@settings(max_examples=400, deadline=None)
@given(
    seed=st.integers(0, 2**31 - 1),
    n=st.integers(1, 120),
    c=st.integers(1, 25),
    d=st.integers(1, 300),
    steps=st.integers(1, 10),
    lr=st.floats(1e-3, 1.0),
)
def test_adapt_parity_on_larger_shapes(seed, n, c, d, steps, lr):
    """The default kernel choice on task sizes up to 25-way and 300-d (slow: many examples)."""
    E, y, W, b = problem(seed, 1, n, c, d)
    got_W, got_b = head.adapt(E, y, W, b, lr=lr, steps=steps)
    ref_W, ref_b = torch_steps(E, y, W, b, lr, steps)
    assert rel_err(got_W, ref_W) <= REL_TOL and rel_err(got_b, ref_b) <= REL_TOL
