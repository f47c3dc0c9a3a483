"""Benchmark: ANIL head adaptation on cached embeddings, numpy runtime vs torch autograd vs learn2learn.

For each (ways, shots, embedding dim) it times ``steps`` SGD steps of the linear head on one
task's cached support embeddings, three ways, in one process, and prints medians:

- ``numpy``: :func:`anil_edge.runtime.head.adapt` (what a device runs);
- ``torch``: the same steps with torch autograd (``autograd.grad``, first order);
- ``l2l``:  learn2learn's ``MAML(head, lr).clone()`` + ``adapt(loss)`` (second order, as in training).

A second table times the whole enrollment episode (class means, prototype start, steps) as the
numpy runtime runs it (:func:`anil_edge.runtime.episodes.fit_head`) and as the exported ONNX
adapt graph runs it in onnxruntime — steps unrolled (what the export writes) and in a ``Loop``.

At 1600-d it also prints the numpy path's achieved GFLOP/s (multiply-adds × 2 of the plain
``steps`` forward/backward products) beside this machine's float32 matrix-product rate,
measured here with numpy on a 1024×1024 product.

    anil-edge bench head [--repeats 200] [--steps 5]
"""

from __future__ import annotations

import argparse
import os
import platform

import numpy as np
import torch
import torch.nn.functional as F

from anil_edge.bench.timing import median_seconds
from anil_edge.runtime import head
from anil_edge.train.l2l_import import learn2learn

l2l = learn2learn()


def make_task(ways: int, shots: int, dim: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    E = np.abs(rng.normal(size=(ways * shots, dim))).astype(np.float32)  # post-ReLU-like
    y = np.repeat(np.arange(ways), shots)
    W = rng.normal(0, 0.01, (ways, dim)).astype(np.float32)
    b = np.zeros(ways, np.float32)
    return E, y, W, b


def torch_fn(E, y, W, b, lr, steps):
    e, labels = torch.from_numpy(E), torch.from_numpy(y)
    W0, b0 = torch.from_numpy(W), torch.from_numpy(b)

    def run():
        w, bias = W0.clone().requires_grad_(), b0.clone().requires_grad_()
        for _ in range(steps):
            gw, gb = torch.autograd.grad(F.cross_entropy(e @ w.T + bias, labels), (w, bias))
            w, bias = (w - lr * gw).detach().requires_grad_(), (bias - lr * gb).detach().requires_grad_()
        return w

    return run


def l2l_fn(E, y, W, b, lr, steps):
    e, labels = torch.from_numpy(E), torch.from_numpy(y)
    linear = torch.nn.Linear(E.shape[1], W.shape[0])
    with torch.no_grad():
        linear.weight.copy_(torch.from_numpy(W))
        linear.bias.copy_(torch.from_numpy(b))
    maml = l2l.algorithms.MAML(linear, lr=lr)

    def run():
        learner = maml.clone()
        for _ in range(steps):
            learner.adapt(F.cross_entropy(learner(e), labels))
        return learner

    return run


def machine_gflops(repeats: int = 20) -> float:
    a = np.random.default_rng(0).random((1024, 1024), dtype=np.float32)
    seconds = median_seconds(lambda: a @ a, repeats)
    return 2 * 1024**3 / seconds / 1e9


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=200, help="timed runs per cell (median reported)")
    parser.add_argument("--steps", type=int, default=5, help="SGD steps per adaptation")
    parser.add_argument("--lr", type=float, default=0.5, help="inner-loop learning rate")
    args = parser.parse_args(argv)
    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} cores; numpy {np.__version__}, "
          f"torch {torch.__version__} ({torch.get_num_threads()} threads); steps={args.steps}, "
          f"median of {args.repeats} runs")
    peak = machine_gflops()
    print(f"# machine float32 matmul rate (numpy, 1024x1024): {peak:.1f} GFLOP/s\n")
    episodes: list[str] = []
    print("| ways | shots | dim | numpy µs | torch µs | l2l µs | vs torch | vs l2l | numpy GFLOP/s |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for dim in (64, 256, 1600):
        for ways in (5, 20):
            for shots in (1, 5):
                E, y, W, b = make_task(ways, shots, dim)
                episodes.append(episode_row(E, y, ways, dim, args))
                t_np = median_seconds(lambda E=E, y=y, W=W, b=b: head.adapt(E, y, W, b, lr=args.lr, steps=args.steps),
                                      args.repeats)
                t_torch = median_seconds(torch_fn(E, y, W, b, args.lr, args.steps), args.repeats)
                t_l2l = median_seconds(l2l_fn(E, y, W, b, args.lr, args.steps), args.repeats)
                flops = 2 * 2 * args.steps * E.shape[0] * ways * dim
                gflops = f"{flops / t_np / 1e9:.1f} (peak {peak:.0f})" if dim == 1600 else ""
                print(f"| {ways} | {shots} | {dim} | {t_np * 1e6:.0f} | {t_torch * 1e6:.0f} | {t_l2l * 1e6:.0f} "
                      f"| {t_torch / t_np:.1f}× | {t_l2l / t_np:.1f}× | {gflops} |")
    print("\n# the enrollment episode: class means + prototype start + steps; onnxruntime on 1 thread")
    print("| ways | shots | dim | numpy episode µs | ONNX unrolled µs | ONNX Loop µs | unrolled vs numpy | Loop / unrolled |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    print("\n".join(episodes))


def episode_row(E: np.ndarray, y: np.ndarray, ways: int, dim: int, args: argparse.Namespace) -> str:
    """One row of the episode table: numpy vs the ONNX adapt graph (unrolled, Loop)."""
    import onnxruntime as ort

    from anil_edge.export.head_graphs import build_adapt_graph
    from anil_edge.runtime.adaptation import Adaptation
    from anil_edge.runtime.episodes import fit_head
    from anil_edge.runtime.metadata import LearnedHead

    a = Adaptation(args.lr, args.steps, "prototype")
    learned = LearnedHead(np.zeros((ways, dim), np.float32), np.zeros(ways, np.float32))
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    feeds = {"embeddings": E, "labels": y.astype(np.int64)}
    times = [median_seconds(lambda: fit_head(E, y, ways, a, learned), args.repeats)]
    for loop in (False, True):
        session = ort.InferenceSession(build_adapt_graph(a, learned, dim, loop=loop).SerializeToString(), options,
                                       providers=["CPUExecutionProvider"])
        times.append(median_seconds(lambda session=session: session.run(None, feeds), args.repeats))
    shots = E.shape[0] // ways
    return (f"| {ways} | {shots} | {dim} | {times[0] * 1e6:.0f} | {times[1] * 1e6:.0f} | {times[2] * 1e6:.0f} | "
            f"{times[0] / times[1]:.2f}× | {times[2] / times[1]:.2f}× |")


if __name__ == "__main__":
    main()
