"""``bench trainloop``'s measurements on a tiny recipe: positive speeds, the window arithmetic,
and no GPU utilisation claimed on a CPU."""

from __future__ import annotations

import math

import pytest

torch = pytest.importorskip("torch")

from anil_edge.bench.train_loop import Utilisation, fake_split, loop_speeds, step_speeds
from anil_edge.train.config import TrainConfig


def _tiny(**changes) -> TrainConfig:
    return TrainConfig(**{**dict(ways=3, shots=1, queries=2, hidden=8, blocks=2, meta_batch=2, iterations=12,
                                 eval_every=6, eval_tasks=4, checkpoint_every=6, log_every=3, progress=False,
                                 threads=1, device="cpu", out_dir="unused"), **changes})


@pytest.mark.parametrize("sampler", ["device", "learn2learn"])
def test_speeds_are_measured(sampler):
    split = fake_split(classes=60, per_class=6)
    config = _tiny(sampler=sampler)
    bare, with_tasks = step_speeds(config, split, torch.device("cpu"), repeats=3)
    windows, overall, gpu = loop_speeds(config, split, torch.device("cpu"))
    assert all(math.isfinite(v) and v > 0 for v in (bare, with_tasks, windows, overall))
    assert overall < windows  # the overall figure includes validation, checkpoints and set-up
    assert gpu == "n/a"


def test_utilisation_is_not_sampled_without_a_gpu():
    with Utilisation(torch.device("cpu")) as gpu:
        pass
    assert not gpu.enabled and gpu.summary() == "n/a"
