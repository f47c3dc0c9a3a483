"""Benchmark: meta-iterations per second, ``fast`` vs ``l2l`` engine, and the backbone's share.

Two setups from the training issue, with the seed tutorial's task shapes (queries = shots):

- Omniglot-like 20-way 1-shot, 28×28 grayscale, meta-batch 8, 5 inner steps;
- 5-way 5-shot on 32×32 RGB, meta-batch 32, 5 inner steps.

Each row times whole meta-iterations (task sampling through learn2learn, pixel gathering,
the engine's forward, backward and Adam step) on fabricated images — speed does not depend
on their content — and prints the median. ``backbone`` is the median forward+backward of the
same images through the backbone alone with the row's options: the floor of an iteration.
The "default" rows resolve the speed options as training does (:mod:`anil_edge.train.speed`:
timed on this machine, or read from its cache); the others fix them.

    anil-edge bench training [--iterations 15] [--device cpu|cuda]
"""

from __future__ import annotations

import argparse
import os
import random
from dataclasses import dataclass

import numpy as np
import torch

from anil_edge.bench.timing import device_sync, median_seconds
from anil_edge.data.image_set import ImageSet
from anil_edge.runtime.metadata import Preprocessing
from anil_edge.train.batches import BatchMaker
from anil_edge.train.config import TrainConfig
from anil_edge.train.engines import ENGINES, descend
from anil_edge.train.model import AnilModel, build_model
from anil_edge.train.speed import SpeedOptions, device_description, resolve_speed
from anil_edge.train.task_sampler import TaskSampler


@dataclass(frozen=True)
class Setup:
    name: str
    ways: int
    shots: int
    meta_batch: int
    size: int
    channels: int


@dataclass(frozen=True)
class Row:
    engine: str
    norm: str
    precision: str = "fp32"  # "auto": the default, resolved on this machine
    channels_last: bool | None = False  # None: auto
    chunk: int = 0  # images per backbone call, 0: all; -1: auto

    @property
    def auto(self) -> bool:
        return self.precision == "auto"

    def config(self, setup: Setup) -> TrainConfig:
        return TrainConfig(ways=setup.ways, shots=setup.shots, queries=setup.shots, meta_batch=setup.meta_batch,
                           input_size=setup.size, channels=setup.channels, norm=self.norm, engine=self.engine,
                           head_init="learned", adaptation_steps=5, precision=self.precision,
                           channels_last=self.channels_last, chunk=self.chunk)


SETUPS = (Setup("omniglot 20w1s mb8", 20, 1, 8, 28, 1), Setup("rgb32 5w5s mb32", 5, 5, 32, 32, 3))
ROWS = (
    Row("l2l", "batch"), Row("l2l", "group"),
    Row("fast", "batch", "auto", None, -1), Row("fast", "batch"), Row("fast", "batch", chunk=128),
    Row("fast", "batch", channels_last=True), Row("fast", "batch", "bf16", True, 128),
    Row("fast", "group", "auto", None, -1), Row("fast", "group"), Row("fast", "group", "bf16", True, 128),
)


def fake_set(setup: Setup, classes: int = 100, per_class: int = 12) -> ImageSet:
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (classes * per_class, setup.size, setup.size, setup.channels), dtype=np.uint8)
    labels = np.repeat(np.arange(classes), per_class)
    return ImageSet(images, labels, tuple(map(str, range(classes))), tuple(map(str, range(classes))))


def build(config: TrainConfig, options: SpeedOptions, device: torch.device) -> AnilModel:
    torch.manual_seed(0)
    model = build_model(config).to(device)
    options.apply(model)
    return model.train()


def time_row(setup: Setup, config: TrainConfig, options: SpeedOptions, device: torch.device, iterations: int,
             warmup: int) -> tuple[float, float]:
    data = fake_set(setup)
    sampler = TaskSampler(data, ways=setup.ways, shots=setup.shots, queries=setup.shots)
    prep = Preprocessing((setup.size, setup.size), setup.channels, (0.5,) * setup.channels, (0.25,) * setup.channels)
    maker = BatchMaker(data, prep, device)
    model = build(config, options, device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    inner, engine = config.adaptation(), ENGINES[config.engine]
    random.seed(0)

    def iteration() -> None:
        batch = maker.tasks(sampler.sample(setup.meta_batch))
        descend(optimizer, engine(model, batch, inner)[0])

    def backbone() -> None:
        batch = maker.tasks(sampler.sample(setup.meta_batch))
        x = torch.cat([batch.support.flatten(0, 1), batch.query.flatten(0, 1)])
        model.forward_features(x).square().mean().backward()

    sync = device_sync(device)
    return (median_seconds(iteration, iterations, warmup, sync), median_seconds(backbone, iterations, warmup, sync))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--iterations", type=int, default=15, help="timed meta-iterations per row (default 15)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed iterations first (default 3)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    parser.add_argument("--setups", nargs="+", default=[s.name.split()[0] for s in SETUPS],
                        choices=[s.name.split()[0] for s in SETUPS], help="which setups (default: all)")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    print(f"# meta-training speed on {device_description(device)}, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads, {os.cpu_count()} CPUs; medians of {args.iterations}")
    print("| setup | engine / norm | options | ms per iteration | it/s | vs l2l batch fp32 | backbone fwd+bwd ms |")
    print("|---|---|---|---|---|---|---|")
    for setup in (s for s in SETUPS if s.name.split()[0] in args.setups):
        base = None
        for row in ROWS:
            config = row.config(setup)
            choice = resolve_speed(config, device)
            it, bb = time_row(setup, config, choice.options, device, args.iterations, args.warmup)
            base = base or it
            label = ("default: " if row.auto else "") + choice.options.label()
            if row.engine == "l2l":
                label = label.replace("chunk all", "per task")
            print(f"| {setup.name} | {row.engine} {row.norm} | {label} | {1000 * it:.0f} | {1 / it:.2f} | "
                  f"{base / it:.2f}× | {1000 * bb:.0f} |", flush=True)


if __name__ == "__main__":
    main()
