"""The batched torch inner loop against learn2learn's MAML, task by task (second order)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from anil_edge.runtime import head as numpy_head
from anil_edge.train.inner_loop import adapt_heads, head_logits

l2l = pytest.importorskip("learn2learn")
TOL = 1e-5  # normwise relative error


def rel(a: torch.Tensor, ref: torch.Tensor) -> float:
    a, ref = a.detach(), ref.detach()
    return float((a - ref).abs().max() / max(1.0, float(ref.abs().max())))


def tiny_problem(seed=0, tasks=3, ways=4, shots=2, queries=3, dim=6):
    g = torch.Generator().manual_seed(seed)
    backbone = torch.nn.Sequential(torch.nn.Linear(10, dim), torch.nn.Tanh())
    for p in backbone.parameters():
        torch.nn.init.normal_(p, std=0.5, generator=g)
    linear = torch.nn.Linear(dim, ways)
    torch.nn.init.normal_(linear.weight, std=0.3, generator=g)
    x_s = torch.randn(tasks, ways * shots, 10, generator=g)
    x_q = torch.randn(tasks, ways * queries, 10, generator=g)
    y_s = torch.arange(ways).repeat_interleave(shots).expand(tasks, -1)
    y_q = torch.arange(ways).repeat_interleave(queries).expand(tasks, -1)
    return backbone, linear, x_s, y_s, x_q, y_q


def outer_loss_fast(backbone, linear, x_s, y_s, x_q, y_q, lr, steps):
    W, b = adapt_heads(backbone(x_s), y_s, linear.weight, linear.bias, lr=lr, steps=steps)
    logits = head_logits(backbone(x_q), W, b)
    return F.cross_entropy(logits.flatten(0, 1), y_q.flatten())


def outer_loss_l2l(backbone, linear, x_s, y_s, x_q, y_q, lr, steps):
    maml = l2l.algorithms.MAML(linear, lr=lr)  # second order (first_order=False), as in the seed
    losses = []
    for t in range(x_s.shape[0]):
        learner = maml.clone()
        for _ in range(steps):
            learner.adapt(F.cross_entropy(learner(backbone(x_s[t])), y_s[t]))
        losses.append(F.cross_entropy(learner(backbone(x_q[t])), y_q[t]))
    return torch.stack(losses).mean()


@pytest.mark.parametrize("steps", [1, 3])
def test_meta_loss_and_meta_gradients_match_learn2learn(steps):
    torch.manual_seed(0)
    backbone, linear, *data = tiny_problem()
    params = list(backbone.parameters()) + list(linear.parameters())
    fast = outer_loss_fast(backbone, linear, *data, lr=0.4, steps=steps)
    fast_grads = torch.autograd.grad(fast, params)
    ref = outer_loss_l2l(backbone, linear, *data, lr=0.4, steps=steps)
    ref_grads = torch.autograd.grad(ref, params)
    assert rel(fast, ref) <= TOL
    for g_fast, g_ref in zip(fast_grads, ref_grads):
        assert g_fast.abs().max() > 0 and rel(g_fast, g_ref) <= TOL


def test_torch_inner_loop_equals_the_device_runtime():
    rng = np.random.default_rng(5)
    E = rng.normal(size=(2, 9, 7)).astype(np.float32)
    y = rng.integers(0, 3, size=(2, 9))
    W, b = rng.normal(size=(3, 7)).astype(np.float32), rng.normal(size=3).astype(np.float32)
    W_t, b_t = adapt_heads(torch.from_numpy(E), torch.from_numpy(y), torch.from_numpy(W), torch.from_numpy(b), lr=0.3, steps=4)
    W_np, b_np = numpy_head.adapt(E, y, W, b, lr=0.3, steps=4)
    assert rel(W_t, torch.from_numpy(W_np)) <= TOL and rel(b_t, torch.from_numpy(b_np)) <= TOL
