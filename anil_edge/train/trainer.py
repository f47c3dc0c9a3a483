"""ANIL's outer loop (Raghu et al., 2019): Adam over backbone + head on the mean query loss of a
meta-batch of tasks, each adapted by head-only SGD steps (second order through the steps).

Writes ``last.pt`` every ``checkpoint_every`` iterations, ``best.pt`` at each best validation
score (per-image accuracy), ``metrics.jsonl`` every iteration and ``curves.png`` at the end.
"""

from __future__ import annotations

import math
import random
import time
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from ..errors import InputError
from ..runtime.metadata import Preprocessing
from .backbones import BackboneConfig
from .batches import BatchMaker, normalisation_stats
from .bn_stats import recalibrate_batchnorm
from .checkpoint import CheckpointError, load_checkpoint, rng_state, save_checkpoint, set_rng_state
from .config import TrainConfig
from .data.splits import Split
from .data.tasks import TaskSampler
from .engines import ENGINES, InnerLoop
from .evaluate import EvalResult, evaluate, sample_tasks
from .metrics import MetricsLog, plot_curves
from .model import AnilModel

# Fields that may differ between a run and its resumption (they do not change the optimisation).
RESUMABLE_CHANGES = ("device", "threads", "progress", "out_dir", "data")


@dataclass(frozen=True, eq=False)
class TrainResult:
    model: AnilModel  # the final model (eval mode)
    preprocessing: Preprocessing  # what the model was trained on; exported with it
    best_validation: float  # best per-image validation accuracy seen
    out_dir: Path  # holds last.pt, best.pt, metrics.jsonl, curves.png


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise InputError(f"device {name!r} asked for, but this torch build sees no CUDA device")
    return torch.device(name)


def build_model(config: TrainConfig) -> AnilModel:
    backbone = BackboneConfig(config.channels, config.input_size, config.hidden, config.blocks, norm=config.norm,
                              arch=config.backbone)
    return AnilModel(backbone, config.ways)


def decode_preprocessing(config: TrainConfig) -> Preprocessing:
    """How image files are decoded for training (size, colour, resize filter): the runtime's."""
    size = (config.input_size, config.input_size)
    return Preprocessing(size, config.channels, (0.0,) * config.channels, (1.0,) * config.channels,
                         invert=config.invert, resize="lanczos")


def preprocessing_for(config: TrainConfig, split: Split) -> Preprocessing:
    mean, std = normalisation_stats(split.train, config.invert)
    size = (config.input_size, config.input_size)
    return Preprocessing(size, config.channels, mean, std, invert=config.invert, resize="lanczos")


def train(config: TrainConfig, split: Split, *, resume: bool = False, stop_after: int | None = None) -> TrainResult:
    """Meta-train on ``split.train``, validating on ``split.validation``.

    ``resume`` continues from ``out_dir/last.pt`` exactly (same next tasks, augmentations and
    optimiser state); ``stop_after`` ends this call after that many iterations in total (the
    run can be resumed later), as an interruption would.
    """
    out = Path(config.out_dir)
    if resume and not (out / "last.pt").is_file():
        raise CheckpointError(f"cannot resume: checkpoint not found: {out / 'last.pt'}")
    out.mkdir(parents=True, exist_ok=True)
    device = resolve_device(config.device)
    if config.threads:
        torch.set_num_threads(config.threads)
    _seed(config.seed)
    prep = preprocessing_for(config, split)
    model = build_model(config).to(device)
    _set_speed_options(model, config, device)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.meta_lr)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, _schedule(config))
    start, best = 0, -1.0
    if resume:
        start, best = _restore(out / "last.pt", config, model, optimizer, schedule)
    loop = _Loop(config, split, prep, model, device)
    log = MetricsLog(out / "metrics.jsonl", resume_from=start if resume else None)
    end = config.iterations if stop_after is None else min(stop_after, config.iterations)
    bar = _progress(config, start, end)
    for it in range(start, end):
        tick = time.perf_counter()
        loss, acc = loop.step(optimizer)
        schedule.step()
        rate = 1.0 / (time.perf_counter() - tick)
        log.write({"split": "train", "iteration": it, "loss": loss, "accuracy": acc,
                   "lr": optimizer.param_groups[0]["lr"], "it_per_s": rate})
        done = it + 1
        if done % config.eval_every == 0 or done == config.iterations:
            result = loop.validate()
            log.write({"split": "validation", "iteration": it, "accuracy": result.accuracy, "ci95": result.ci95})
            if result.accuracy > best:
                best = result.accuracy
                _save(out / "best.pt", config, model, optimizer, schedule, done, best, prep)
        if done % config.checkpoint_every == 0 or done == end:
            _save(out / "last.pt", config, model, optimizer, schedule, done, best, prep)
        if bar is not None:
            bar.set_postfix(loss=f"{loss:.3f}", acc=f"{acc:.3f}", best_val=f"{best:.3f}", refresh=False)
            bar.update(1)
    if bar is not None:
        bar.close()
    if end == config.iterations:
        _plot(out)
    return TrainResult(model.eval(), prep, best, out)


class _Loop:
    """One meta-iteration, and validation on fixed tasks."""

    def __init__(self, config: TrainConfig, split: Split, prep: Preprocessing, model: AnilModel, device) -> None:
        self.config, self.model = config, model
        train_set = split.train.with_rotations() if config.rotations else split.train
        self.sampler = TaskSampler(train_set, ways=config.ways, shots=config.shots, queries=config.queries,
                                   name="training set")
        self.train_maker = BatchMaker(train_set, prep, device)
        self.val_maker = BatchMaker(split.validation, prep, device)
        self.val_ways = min(config.ways, split.validation.n_classes)
        self.val_tasks = sample_tasks(split.validation, ways=self.val_ways, shots=config.shots,
                                      queries=config.queries, tasks=config.eval_tasks, seed=config.seed + 1)
        self.inner = InnerLoop(config.fast_lr, config.adaptation_steps, config.head_init)
        self.engine = ENGINES[config.engine]

    def step(self, optimizer: torch.optim.Optimizer) -> tuple[float, float]:
        self.model.train()
        batch = self.train_maker.tasks(self.sampler.sample(self.config.meta_batch), augment=self.config.augment)
        loss, acc = self.engine(self.model, batch, self.inner)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return float(loss.detach()), float(acc)

    def validate(self) -> EvalResult:
        if self.config.recalibrate_bn:
            recalibrate_batchnorm(self.model, self.train_maker, seed=self.config.seed)
        return evaluate(self.model, self.val_maker, self.val_tasks, self.inner, self.val_ways)


def _seed(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _set_speed_options(model: AnilModel, config: TrainConfig, device: torch.device) -> None:
    model.chunk = config.chunk if config.chunk >= 0 else (128 if device.type == "cpu" else 0)
    if config.precision == "bf16" or (config.precision == "auto" and device.type == "cpu"):
        model.autocast = torch.bfloat16
    if config.channels_last:
        model.channels_last = True
        model.to(memory_format=torch.channels_last)


def _schedule(config: TrainConfig):
    if config.schedule == "constant":
        return lambda it: 1.0
    return lambda it: 0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * min(it, config.iterations) / config.iterations))


def _save(path: Path, config, model, optimizer, schedule, iteration: int, best: float, prep: Preprocessing) -> None:
    save_checkpoint(path, {
        "config": config.to_dict(), "model": model.state_dict(), "optimizer": optimizer.state_dict(),
        "schedule": schedule.state_dict(), "iteration": iteration, "best_validation": best,
        "preprocessing": asdict(prep), "embedding_dim": model.embedding_dim, "rng": rng_state(),
    })


def _restore(path: Path, config: TrainConfig, model, optimizer, schedule) -> tuple[int, float]:
    payload = load_checkpoint(path)
    saved = TrainConfig.from_dict(payload["config"]).to_dict()
    changed = [k for k, v in config.to_dict().items() if saved[k] != v and k not in RESUMABLE_CHANGES]
    if changed:
        diffs = "; ".join(f"{k}: checkpoint {saved[k]!r}, now {config.to_dict()[k]!r}" for k in changed)
        raise InputError(f"cannot resume {path} with a different configuration ({diffs})")
    model.load_state_dict(payload["model"])
    optimizer.load_state_dict(payload["optimizer"])
    schedule.load_state_dict(payload["schedule"])
    set_rng_state(payload["rng"])
    return int(payload["iteration"]), float(payload["best_validation"])


def _progress(config: TrainConfig, start: int, end: int):
    if not config.progress:
        return None
    from tqdm import tqdm

    return tqdm(total=end, initial=start, desc="meta-train", unit="it", dynamic_ncols=True)


def _plot(out: Path) -> None:
    try:
        plot_curves(out / "metrics.jsonl", out / "curves.png")
    except ImportError as exc:  # matplotlib comes with the train extra; without it, no plot
        warnings.warn(f"curves.png not written: {exc}", stacklevel=2)
