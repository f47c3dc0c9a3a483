"""Benchmark: meta-iterations per second, ``fast`` vs ``l2l`` engine, and the backbone's share.

Two setups from the training issue, with the seed tutorial's task shapes (queries = shots):

- Omniglot-like 20-way 1-shot, 28×28 grayscale, meta-batch 8, 5 inner steps;
- 5-way 5-shot on 32×32 RGB, meta-batch 32, 5 inner steps.

Each row times whole meta-iterations (task sampling through learn2learn, pixel gathering,
the engine's forward, backward and Adam step) on fabricated images — speed does not depend
on their content — and prints the median. ``backbone`` is the median forward+backward of the
same images through the backbone alone with the row's options: the floor of an iteration.

    anil-edge bench training [--iterations 15] [--device cpu|cuda]
"""

from __future__ import annotations

import argparse
import os
import platform
import random
from dataclasses import dataclass

import numpy as np
import torch

from anil_edge.bench.timing import device_sync, median_seconds
from anil_edge.runtime.adaptation import Adaptation
from anil_edge.runtime.metadata import Preprocessing
from anil_edge.train.backbones import BackboneConfig
from anil_edge.train.batches import BatchMaker
from anil_edge.train.data.image_set import ImageSet
from anil_edge.train.data.task_sampler import TaskSampler
from anil_edge.train.engines import ENGINES
from anil_edge.train.model import AnilModel


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
    bf16: bool = False
    channels_last: bool = False
    chunk: int = -1  # -1: auto (128 on CPU, all on GPU)

    def label(self) -> str:
        opts = [o for o, on in (("bf16", self.bf16), ("channels-last", self.channels_last)) if on]
        return f"{self.engine:4} {self.norm:5} {'+'.join(opts) or 'fp32'}"


SETUPS = (Setup("omniglot 20w1s mb8", 20, 1, 8, 28, 1), Setup("rgb32 5w5s mb32", 5, 5, 32, 32, 3))
ROWS = (
    Row("l2l", "batch"), Row("l2l", "group"),
    Row("fast", "batch"), Row("fast", "batch", chunk=0), Row("fast", "batch", bf16=True, channels_last=True),
    Row("fast", "group"), Row("fast", "group", bf16=True, channels_last=True),
)


def fake_set(setup: Setup, classes: int = 100, per_class: int = 12) -> ImageSet:
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (classes * per_class, setup.size, setup.size, setup.channels), dtype=np.uint8)
    labels = np.repeat(np.arange(classes), per_class)
    return ImageSet(images, labels, tuple(map(str, range(classes))), tuple(map(str, range(classes))))


def build(setup: Setup, row: Row, device: torch.device) -> AnilModel:
    torch.manual_seed(0)
    model = AnilModel(BackboneConfig(setup.channels, setup.size, 64, 4, norm=row.norm), setup.ways).to(device)
    model.autocast = torch.bfloat16 if row.bf16 else None
    if row.channels_last:
        model.channels_last = True
        model.to(memory_format=torch.channels_last)
    model.chunk = row.chunk if row.chunk >= 0 else (128 if device.type == "cpu" else 0)
    return model.train()


def time_row(setup: Setup, row: Row, device: torch.device, iterations: int, warmup: int) -> tuple[float, float]:
    data = fake_set(setup)
    sampler = TaskSampler(data, ways=setup.ways, shots=setup.shots, queries=setup.shots)
    prep = Preprocessing((setup.size, setup.size), setup.channels, (0.5,) * setup.channels, (0.25,) * setup.channels)
    maker = BatchMaker(data, prep, device)
    model = build(setup, row, device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    inner, engine = Adaptation(0.5, 5, "learned"), ENGINES[row.engine]
    random.seed(0)

    def iteration() -> None:
        batch = maker.tasks(sampler.sample(setup.meta_batch))
        loss, _ = engine(model, batch, inner)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

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
    card = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or platform.machine()
    print(f"# meta-training speed on {device.type} ({card}), torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads, {os.cpu_count()} CPUs; medians of {args.iterations}")
    print("| setup | engine / norm / options | chunk | ms per iteration | it/s | vs l2l batch fp32 | backbone fwd+bwd ms |")
    print("|---|---|---|---|---|---|---|")
    for setup in (s for s in SETUPS if s.name.split()[0] in args.setups):
        base = None
        for row in ROWS:
            it, bb = time_row(setup, row, device, args.iterations, args.warmup)
            base = base or it
            chunk = "per task" if row.engine == "l2l" else ("auto" if row.chunk < 0 else "all")
            print(f"| {setup.name} | {row.label()} | {chunk} | {1000 * it:.0f} | {1 / it:.2f} | "
                  f"{base / it:.2f}× | {1000 * bb:.0f} |", flush=True)


if __name__ == "__main__":
    main()
