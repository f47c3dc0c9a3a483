"""Benchmark: ``anil-edge train``'s whole loop against its bare meta-step, for one recipe.

Issue 12: a GPU ran the bare step at ~129 it/s but real training at 40–65. For the default
recipe (or ``--recipe``) on fabricated Omniglot-sized data, each variant prints

- ``bare step``: the engine's forward, backward and Adam step on one prepared batch, repeated
  (what ``anil-edge bench training`` times);
- ``step + tasks``: :meth:`MetaLoop.step` — task sampling, pixel gathering and augmentation, then
  the step;
- ``train()``: the real loop for ``--iterations`` — logging, validation (BatchNorm
  recalibration, per-image episodes) and checkpoints at the recipe's cadence — as iterations
  per second of training windows (between validations) and overall (wall clock, all included),
  with the GPU's utilisation sampled by ``nvidia-smi`` meanwhile (GPU only).

Variants: ``now`` (the device sampler, a record every ``log_every`` iterations) and ``before``
(learn2learn's sampler and a record, hence a wait for the device, every iteration — the loop of
release 0.1).

    anil-edge bench trainloop [--device cuda] [--iterations 300]
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import tempfile
import threading
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from anil_edge.bench.timing import device_sync, median_seconds
from anil_edge.data.image_set import ImageSet
from anil_edge.data.splits import Split, split_by_group
from anil_edge.train.config import TrainConfig
from anil_edge.train.engines import descend
from anil_edge.train.loop import MetaLoop
from anil_edge.train.metrics import read_metrics
from anil_edge.train.preprocessing import preprocessing_for
from anil_edge.train.recipes import recipe
from anil_edge.train.trainer import train, training_model

VARIANTS = {"now": {}, "before": dict(sampler="learn2learn", log_every=1)}


def fake_split(classes: int = 240, per_class: int = 20, size: int = 28) -> Split:
    """Omniglot-sized random strokes (content does not change speed): 12 groups of 20 classes."""
    rng = np.random.default_rng(0)
    images = np.where(rng.random((classes * per_class, size, size, 1)) < 0.15, 0, 255).astype(np.uint8)
    names = tuple(f"c{c}" for c in range(classes))
    data = ImageSet(images, np.repeat(np.arange(classes), per_class), names, tuple(f"g{c // 20}" for c in range(classes)),
                    np.tile(np.arange(1, per_class + 1), classes).astype(np.int64))
    return split_by_group(data, validation=0.15, test=0.25, seed=0)


def step_speeds(config: TrainConfig, split: Split, device: torch.device, repeats: int) -> tuple[float, float]:
    """(bare step it/s, step + tasks it/s)."""
    torch.manual_seed(0)
    model = training_model(config, device)
    loop = MetaLoop(config, split, preprocessing_for(config, split), model, device)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.meta_lr)
    batch = loop.batch()

    def bare() -> None:
        descend(optimizer, loop.forward(batch)[0])

    sync = device_sync(device)
    return (1 / median_seconds(bare, repeats, 5, sync), 1 / median_seconds(lambda: loop.step(optimizer), repeats, 5, sync))


class Utilisation:
    """Samples the GPU's utilisation (%) with nvidia-smi every ``period`` seconds."""

    def __init__(self, device: torch.device, period: float = 0.1) -> None:
        self.samples: list[float] = []
        self.index = device.index or 0
        self.enabled = device.type == "cuda" and shutil.which("nvidia-smi") is not None
        self.period, self.stop = period, threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self.stop.is_set():
            out = subprocess.run(["nvidia-smi", "--query-gpu=utilization.gpu", "--format=csv,noheader,nounits",
                                  "-i", str(self.index)], capture_output=True, text=True, check=False).stdout
            if out.strip().isdigit():
                self.samples.append(float(out.strip()))
            self.stop.wait(self.period)

    def __enter__(self) -> Utilisation:
        if self.enabled:
            self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        if self.enabled:
            self.thread.join()

    def summary(self) -> str:
        return f"{np.mean(self.samples):.0f}% (median {np.median(self.samples):.0f}%)" if self.samples else "n/a"


def loop_speeds(config: TrainConfig, split: Split, device: torch.device) -> tuple[float, float, str]:
    """(training-window it/s, overall it/s, GPU utilisation) of a whole ``train()``."""
    with tempfile.TemporaryDirectory() as out:
        train(replace(config, out_dir=str(Path(out) / "warm"), iterations=10, eval_every=10), split)  # warm-up
        config = replace(config, out_dir=str(Path(out) / "run"))
        sync = device_sync(device)
        with Utilisation(device) as gpu:
            start = time.perf_counter()
            train(config, split)
            if sync is not None:
                sync()
            overall = config.iterations / (time.perf_counter() - start)
        windows = [r for r in read_metrics(Path(config.out_dir) / "metrics.jsonl") if r["split"] == "train"]
    in_windows = sum(r.get("iterations", 1) for r in windows) / sum(r.get("iterations", 1) / r["it_per_s"] for r in windows)
    return in_windows, overall, gpu.summary()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--recipe", default="+augment-cosine", help="recipe name (default: the default recipe)")
    parser.add_argument("--iterations", type=int, default=300, help="train() iterations per variant (default 300)")
    parser.add_argument("--repeats", type=int, default=30, help="timed steps per median (default 30)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    card = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or platform.machine()
    split = fake_split()
    print(f"# {args.recipe} on {device.type} ({card}), torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"{os.cpu_count()} CPUs; train() {args.iterations} iterations per variant")
    print("| variant | bare step it/s | step + tasks it/s | train() it/s, training windows | train() it/s overall "
          "| overall / bare | GPU utilisation in train() |")
    print("|---|---|---|---|---|---|---|")
    for name, changes in VARIANTS.items():
        config = TrainConfig(**{**recipe(args.recipe), **changes}, iterations=args.iterations, device=args.device,
                             progress=False, out_dir="unused")
        bare, with_tasks = step_speeds(config, split, device, args.repeats)
        windows, overall, gpu = loop_speeds(config, split, device)
        print(f"| {name} | {bare:.1f} | {with_tasks:.1f} | {windows:.1f} | {overall:.1f} | {overall / bare:.2f} | {gpu} |",
              flush=True)


if __name__ == "__main__":
    main()
