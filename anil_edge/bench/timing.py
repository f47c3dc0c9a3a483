"""Timing helpers shared by the benchmarks: the median of repeated wall-clock runs."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np


def median_seconds(fn, repeats: int, warmup: int = 1, sync: Callable[[], None] | None = None) -> float:
    """Median wall time of ``fn()`` over ``repeats`` calls after ``warmup`` untimed ones;
    ``sync`` (see :func:`device_sync`) waits for queued device work before and after each call."""
    wait = sync or (lambda: None)
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        wait()
        start = time.perf_counter()
        fn()
        wait()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def device_sync(device: Any) -> Callable[[], None] | None:
    """A wait for a torch device's queued work (CUDA kernels run asynchronously); None on a CPU."""
    if getattr(device, "type", "cpu") != "cuda":
        return None
    import torch

    return lambda: torch.cuda.synchronize(device)
