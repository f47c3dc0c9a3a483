"""Accuracy study: Omniglot minimal background, meta-trained on this CPU for a fixed wall time
per recipe, scored on held-out alphabets with per-image (deployed) embeddings.

For each recipe (anil_edge/train/recipes.py) it first times a few iterations of every recipe
(before any training, so that later load on the machine cannot change the budgets; in three
interleaved rounds, taking each recipe's median, so that a drift in the machine's speed does
not favour one recipe) to set the iteration count that fits ``--minutes``, then trains each
and evaluates 600 test tasks, 20-way and 5-way 1-shot, with classes from anywhere in the test split ("mixed") and, where the data
records groups and drawers, within one alphabet with support and query by different people
(Lake et al., 2015). ``--transductive`` adds BatchNorm's transductive score (what learn2learn's
examples report).

    anil-edge bench recipes --minutes 15 seed +augment-cosine
"""

from __future__ import annotations

import argparse
import json
import random
import time
from pathlib import Path

import torch

from anil_edge.bench.timing import device_sync, median_seconds
from anil_edge.data.sources import load_split
from anil_edge.data.splits import Split
from anil_edge.data.tasks import fixed_tasks
from anil_edge.train.batches import BatchMaker
from anil_edge.train.config import TrainConfig
from anil_edge.train.evaluate import evaluate, evaluate_transductive
from anil_edge.train.loop import MetaLoop
from anil_edge.train.preprocessing import decode_preprocessing, preprocessing_for
from anil_edge.train.recipes import recipe
from anil_edge.train.trainer import resolve_device, train, training_model


def calibrate(config: TrainConfig, split, iterations: int = 30, warmup: int = 5) -> float:
    """Seconds per meta-iteration of this recipe (median after warm-up)."""
    torch.manual_seed(0)
    random.seed(0)
    device = resolve_device(config.device)
    model = training_model(config, device)
    loop = MetaLoop(config, split, preprocessing_for(config, split), model, device)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.meta_lr)
    return median_seconds(lambda: loop.step(optimizer), iterations, warmup, device_sync(device))


def score(result, split, config: TrainConfig, transductive: bool = False) -> dict:
    maker = BatchMaker(split.test, result.preprocessing, resolve_device(config.device))
    inner = config.adaptation()
    out = {}
    for ways in (20, 5):
        tasks = fixed_tasks(split.test, ways=ways, shots=1, queries=15, tasks=600, seed=1234)
        out[f"test_{ways}w1s"] = evaluate(result.model, maker, tasks, inner, ways)
        if split.test.drawers is not None:
            lake = fixed_tasks(split.test, ways=ways, shots=1, queries=15, tasks=600, seed=1234, within_group=True,
                               distinct_drawers=True)
            out[f"test_{ways}w1s_within_group"] = evaluate(result.model, maker, lake, inner, ways)
        if transductive and config.norm == "batch":
            out[f"test_{ways}w1s_transductive"] = evaluate_transductive(result.model, maker, tasks, inner, ways)
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("recipes", nargs="+", help="recipe names (anil_edge/train/recipes.py)")
    parser.add_argument("--minutes", type=float, default=15.0, help="training wall time per recipe")
    parser.add_argument("--data", nargs="+", default=["../shared/data/omniglot/images_background_small1.zip",
                                                      "../shared/data/omniglot/images_background_small2.zip"])
    parser.add_argument("--out", default="runs/study")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or auto (default cpu)")
    parser.add_argument("--transductive", action="store_true", help="also score BatchNorm transductively")
    args = parser.parse_args(argv)
    decoded: dict = {}  # one split per input size: each recipe sees images at its own size
    probes: dict[str, TrainConfig] = {}
    split_of: dict[str, Split] = {}
    timings: dict[str, list[float]] = {name: [] for name in args.recipes}
    for name in args.recipes:
        probes[name] = TrainConfig(**recipe(name), dataset="omniglot", data=tuple(args.data), progress=False,
                                   out_dir="/tmp/unused", device=args.device)
        decode = decode_preprocessing(probes[name])
        if decode not in decoded:
            decoded[decode] = load_split("omniglot", tuple(args.data), decode, validation=0.15, test=0.25, seed=0)
        split_of[name] = decoded[decode]
    for _ in range(3):  # every budget first, in interleaved rounds (see the module docstring)
        for name in args.recipes:
            timings[name].append(calibrate(probes[name], split_of[name], iterations=20))
    per_iteration = {name: sorted(t)[1] for name, t in timings.items()}  # the median of the three rounds
    for name in args.recipes:
        print(f"# {name}: {per_iteration[name]:.4f} s per iteration (rounds: "
              f"{', '.join(f'{t:.4f}' for t in timings[name])})", flush=True)
    for name in args.recipes:
        split, per_it = split_of[name], per_iteration[name]
        iterations = max(10, int(args.minutes * 60 / per_it * 0.93))  # ~7% for validation passes
        config = TrainConfig(**{**recipe(name), "dataset": "omniglot", "iterations": iterations,
                                "eval_every": max(1, iterations // 6),
                                "checkpoint_every": max(1, iterations // 6), "data": tuple(args.data),
                                "progress": False, "device": args.device, "out_dir": str(Path(args.out) / name.strip("+"))})
        start = time.perf_counter()
        result = train(config, split)
        minutes = (time.perf_counter() - start) / 60
        scores = score(result, split, config, args.transductive)
        device = torch.cuda.get_device_name() if config.device != "cpu" else "cpu"
        row = {"recipe": name, "calibrated_s_per_it": round(per_it, 4), "device": device, "iterations": iterations,
               "train_minutes": round(minutes, 2),
               "best_validation": result.best_validation,
               **{k: [round(100 * v.accuracy, 2), round(100 * v.ci95, 2)] for k, v in scores.items()}}
        with open(Path(args.out) / "results.jsonl", "a") as handle:
            handle.write(json.dumps(row) + "\n")
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
