"""ANIL's outer loop (Raghu et al., 2019): Adam over backbone + head on the mean query loss of a
meta-batch of tasks, each adapted by head-only SGD steps (second order through the steps).

Writes ``last.pt`` every ``checkpoint_every`` iterations, ``best.pt`` at each best validation
score (per-image accuracy), ``metrics.jsonl`` every ``log_every`` iterations (the window's mean
loss and accuracy) and ``curves.png`` at the end. The loss stays on the device between records:
on a GPU the host then queues iterations ahead instead of waiting for each one.
"""

from __future__ import annotations

import logging
import math
import random
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..data.splits import Split
from ..data.tasks import check_task_shape
from ..errors import InputError, TrainingError
from ..runtime.legacy import speed_before_timing
from ..runtime.metadata import Preprocessing
from .checkpoint import (
    CheckpointError,
    checkpoint_iteration,
    load_checkpoint,
    set_rng_state,
)
from .checkpoint_writer import CheckpointWriter
from .config import TrainConfig
from .distributed import SINGLE, DistContext, barrier, from_main, init_distributed, launched_by_torchrun
from .interrupt import GracefulStop, lost_message, saved_message
from .loop import MetaLoop
from .metrics import MetricsLog, RecordWindow, plot_curves
from .model import AnilModel, build_model, parameter_groups
from .preprocessing import preprocessing_for
from .speed import SpeedChoice, SpeedOptions, resolve_speed

LOG = logging.getLogger(__name__)  # the speed options chosen (``anil-edge train`` prints its INFO lines)
# Fields that may differ between a run and its resumption (they do not change the optimisation;
# the speed options a run resolved are kept from its checkpoint unless set explicitly).
RESUMABLE_CHANGES = ("device", "threads", "progress", "out_dir", "data", "log_every", "precision", "channels_last", "chunk")


@dataclass(frozen=True, eq=False)
class TrainResult:
    model: AnilModel  # the final model (eval mode)
    preprocessing: Preprocessing  # what the model was trained on; exported with it
    best_validation: float  # best per-image validation accuracy seen, by the selection metric
    validation_ways: int  # classes per validation task: ways, or fewer when validation has fewer classes
    out_dir: Path  # holds last.pt, best.pt, metrics.jsonl, curves.png
    selected_by: str = "random tasks"  # the validation best.pt was chosen by (MetaLoop.selection_name)


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise InputError(f"device {name!r} asked for, but this torch build sees no CUDA device")
    return torch.device(name)


def training_model(config: TrainConfig, device: torch.device, options: SpeedOptions | None = None) -> AnilModel:
    """The model on ``device`` with speed options (bf16, channels-last, chunk): ``options``, or
    the config's resolved on this device (:func:`~anil_edge.train.speed.resolve_speed`)."""
    model = build_model(config, pretrained=True).to(device)
    (options or resolve_speed(config, device).options).apply(model)
    return model


def train(config: TrainConfig, split: Split, *, resume: bool = False, stop_after: int | None = None) -> TrainResult:
    """Meta-train on ``split.train``, validating on ``split.validation``.

    ``resume`` continues from ``out_dir/last.pt`` exactly (same next tasks, augmentations and
    optimiser state); ``stop_after`` ends this call after that many iterations in total (the
    run can be resumed later), as an interruption would. Under torchrun every rank calls this;
    only rank 0 writes checkpoints, metrics and the plot.
    """
    _check_images(config, split)
    _check_tasks(config, split)
    out = check_out_dir(config)
    if resume and not (out / "last.pt").is_file():
        raise CheckpointError(f"cannot resume: checkpoint not found: {out / 'last.pt'}")
    ctx, device = init_distributed(config.device, config.dist_timeout) if launched_by_torchrun() else (
        SINGLE, resolve_device(config.device))
    if ctx.main:
        out.mkdir(parents=True, exist_ok=True)
    if config.threads:
        torch.set_num_threads(config.threads)
    payload = load_checkpoint(out / "last.pt") if resume else None
    speed = _speed(config, device, ctx, payload)
    _seed(config.seed)
    prep = preprocessing_for(config, split)
    model = training_model(config, device, speed.options)
    optimizer = torch.optim.Adam(parameter_groups(model, config), lr=config.meta_lr)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, _schedule(config))
    loop = MetaLoop(config, split, prep, model, device, ctx)
    if loop.prefix is not None and ctx.main and config.iterations:
        LOG.info("prefix cache: the %d frozen stages run once per training image (up to %d MB kept); no pixel "
                 "augmentation", config.freeze_stages, config.prefix_cache_mb)
    start, best = _restore(payload, out / "last.pt", config, loop, optimizer, schedule) if payload else (0, -1.0)
    writer = CheckpointWriter(config, loop, optimizer, schedule, prep, out, ctx, speed.options)
    log = MetricsLog(out / "metrics.jsonl", resume_from=start if resume else None) if ctx.main else None
    if config.iterations == 0:
        return _no_meta_training(config, loop, writer, log, prep, out, ctx)
    if start == 0 and (config.pretrained or config.init_from):  # the starting backbone is a candidate too (P>M>F's lr 0)
        best = _validate(loop, writer, log, 0, best, bar=None, ctx=ctx)
    end = config.iterations if stop_after is None else min(stop_after, config.iterations)
    bar = _progress(config, start, end) if ctx.main else None
    if bar is not None:
        bar.set_postfix(best_val=_best_text(best), refresh=False)
    if resume:
        writer.saved["last.pt"] = start
    session = _Session(config, loop, writer, log, optimizer, schedule, bar, ctx, out, RecordWindow(start))
    best = _iterate(session, start, end, best)
    if bar is not None:
        bar.close()
    if end == config.iterations and ctx.main:
        _plot(out)
    barrier(ctx)
    return TrainResult(model.eval(), prep, best, loop.val_ways, out, loop.selection_name)


@dataclass
class _Session:
    """What the iterations of one :func:`train` call share."""

    config: TrainConfig
    loop: MetaLoop
    writer: CheckpointWriter
    log: MetricsLog | None  # None on ranks other than 0
    optimizer: torch.optim.Optimizer
    schedule: torch.optim.lr_scheduler.LambdaLR
    bar: Any  # the progress bar (tqdm), None without one
    ctx: DistContext
    out: Path
    window: RecordWindow  # the loss and accuracy since the last record


def _iterate(s: _Session, start: int, end: int, best: float) -> float:
    """Iterations ``start`` .. ``end - 1``; the best validation score. The first Ctrl-C finishes the
    iteration, saves last.pt and stops; a second stops at once. Either way the KeyboardInterrupt
    says where ``--resume`` continues (:mod:`.interrupt`)."""
    it = start
    with GracefulStop(enabled=s.ctx.world == 1) as stop:
        try:
            for it in range(start, end):
                best = _iteration(s, it, end, best)
                if stop.requested:
                    s.writer.save("last.pt", it + 1, best)
                    raise KeyboardInterrupt(saved_message(s.out, it + 1))
        except KeyboardInterrupt as exc:
            if exc.args:
                raise
            raise KeyboardInterrupt(lost_message(s.out, it + 1, s.writer.saved.get("last.pt"))) from None
    return best


def _iteration(s: _Session, it: int, end: int, best: float) -> float:
    """One meta-step, then the record, validation and checkpoint that fall due after it."""
    config = s.config
    s.window.add(*s.loop.step(s.optimizer))
    s.schedule.step()
    done = it + 1
    if s.bar is not None:
        s.bar.update(1)
    if not any(done % every == 0 for every in (config.log_every, config.eval_every, config.checkpoint_every)) \
            and done not in (end, config.iterations):
        return best
    loss, acc, first, seconds = s.window.flush(s.loop.rank_means)
    if not math.isfinite(loss):
        raise TrainingError(
            f"the meta-loss became {loss} in iterations {first + 1}-{done}: training diverged; no checkpoint was "
            f"written after it ({_last_good(s.out)}); lower --meta-lr or --adaptation-lr and train again")
    if s.log is not None:
        s.log.write({"split": "train", "iteration": it, "loss": loss, "accuracy": acc,
                     "lr": s.optimizer.param_groups[0]["lr"], "iterations": done - first,
                     "it_per_s": (done - first) / seconds})
    if done % config.eval_every == 0 or done == config.iterations:
        best = _validate(s.loop, s.writer, s.log, done, best, s.bar, s.ctx)
        s.window.restart()  # validation time is not training speed
    if done % config.checkpoint_every == 0 or done == end:
        s.writer.save("last.pt", done, best)
    best_text = _best_text(best)
    if s.bar is not None:
        s.bar.set_postfix(loss=f"{loss:.3f}", acc=f"{100 * acc:.1f}%", best_val=best_text, refresh=False)
    elif s.ctx.main and (done % config.log_every == 0 or done == end):  # --no-progress: a line per log interval
        LOG.info("iteration %d/%d: loss %.3f, accuracy %.1f%%, best validation %s", done, end, loss, 100 * acc,
                 best_text)
    return best


def _validate(loop: MetaLoop, writer: CheckpointWriter, log: MetricsLog | None, done: int, best: float, bar,
              ctx: DistContext) -> float:
    """Validate after ``done`` iterations, log the record, save best.pt when the selection score
    beats ``best``; the new best."""
    if ctx.main:
        _say(bar, f"validating on {loop.config.eval_tasks} tasks at iteration {done}")
    result = loop.validate()
    if bar is not None:
        bar.set_description("meta-train")
    if log is not None:
        log.write(_validation_record(loop, result, done))
    score = loop.selection_score(result)
    if score > best:
        writer.save("best.pt", done, score)
        return score
    return best


def _validation_record(loop: MetaLoop, result, done: int) -> dict:
    """The metrics.jsonl record of one validation (``iteration``: the last iteration run, -1 before any)."""
    record = {"split": "validation", "iteration": done - 1, "accuracy": result.accuracy, "ci95": result.ci95,
              "selection": loop.selection_score(result)}
    if loop.within_group is not None:
        record.update(within_group_accuracy=loop.within_group.accuracy, within_group_ci95=loop.within_group.ci95)
    return record


def _no_meta_training(config: TrainConfig, loop: MetaLoop, writer: CheckpointWriter, log: MetricsLog | None,
                      prep: Preprocessing, out: Path, ctx: DistContext) -> TrainResult:
    """``iterations=0``: the (pretrained) backbone as it is, validated once and saved as best.pt
    and last.pt: the imprinting baseline (Qi et al., 2018) when the head starts from prototypes."""
    if ctx.main:
        LOG.info("no meta-training (iterations 0): validating the backbone as it is on %d tasks", config.eval_tasks)
    result = loop.validate()
    score = loop.selection_score(result)
    for name in ("best.pt", "last.pt"):
        writer.save(name, 0, score)
    if log is not None:
        log.write({**_validation_record(loop, result, 0), "iteration": 0})
    barrier(ctx)
    return TrainResult(loop.model.eval(), prep, score, loop.val_ways, out, loop.selection_name)


def _seed(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _speed(config: TrainConfig, device: torch.device, ctx: DistContext, payload: dict | None) -> SpeedChoice:
    """The speed options of this run: a resumed run's from its checkpoint (fields set explicitly
    now win), else resolved on rank 0's device and shared with every rank; said in one line."""
    if payload is not None:
        saved = SpeedOptions.from_dict(payload.get("speed")) or legacy_speed(config, device)
        options = SpeedOptions(saved.precision if config.precision == "auto" else config.precision,
                               saved.channels_last if config.channels_last is None else config.channels_last,
                               saved.chunk if config.chunk < 0 else config.chunk)
        return SpeedChoice(options, (), "checkpoint")
    if config.iterations == 0:  # nothing to speed up: validation only
        return SpeedChoice(SpeedOptions("fp32", False, 0), (), "fixed")
    choice = from_main(resolve_speed(config, device) if ctx.main else None, ctx)
    if ctx.main and choice.source != "fixed":
        LOG.info(choice.summary())
    return choice


def legacy_speed(config: TrainConfig, device: torch.device) -> SpeedOptions:
    """What releases before the timed options ran with (:func:`.legacy.speed_before_timing`)."""
    return SpeedOptions(**speed_before_timing(config.precision, config.channels_last, config.chunk,
                                              device.type == "cpu"))


def _schedule(config: TrainConfig):
    if config.schedule == "constant":
        return lambda it: 1.0
    total = max(config.iterations, 1)
    return lambda it: 0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * min(it, total) / total))


def check_out_dir(config: TrainConfig) -> Path:
    """``out_dir`` as a Path; InputError when it names a file (it is created if missing)."""
    out = Path(config.out_dir)
    if out.exists() and not out.is_dir():
        raise InputError(f"out_dir {out} is a file; expected a folder (it is created if missing)")
    return out


def _check_images(config: TrainConfig, split: Split) -> None:
    """The split's images must be what the config's backbone takes (a silent mismatch would train
    one model and export another)."""
    want = (config.input_size, config.input_size, config.channels)
    problems = [f"{name} images are {data.images.shape[1:]} (H, W, C)" for name, data in
                (("training", split.train), ("validation", split.validation)) if data.images.shape[1:] != want]
    if problems:
        raise InputError(f"{'; '.join(problems)}, but the configuration takes {want}: decode the data with "
                         "decode_preprocessing(config)")


def _check_tasks(config: TrainConfig, split: Split) -> None:
    """The tasks training and validation will draw, checked before the speed trial and the model
    are built (a data set that cannot supply them is refused in seconds, not minutes)."""
    if config.iterations:
        check_task_shape(split.train, config.ways, config.shots, config.queries, "training set",
                         copies=4 if config.uses_rotations else 1)
    check_task_shape(split.validation, min(config.ways, split.validation.n_classes), config.shots, config.queries,
                     "validation set")


def _last_good(out: Path) -> str:
    last = out / "last.pt"
    return f"the last good one is {last}" if last.is_file() else "none had been written yet"


def _restore(payload: dict, path: Path, config: TrainConfig, loop: MetaLoop, optimizer, schedule) -> tuple[int, float]:
    saved = TrainConfig.from_checkpoint(payload["config"]).to_dict()
    changed = [k for k, v in config.to_dict().items() if saved[k] != v and k not in RESUMABLE_CHANGES]
    if changed:
        diffs = "; ".join(f"{k}: checkpoint {saved[k]!r}, now {config.to_dict()[k]!r}" for k in changed)
        raise InputError(f"cannot resume {path} with a different configuration ({diffs})")
    if payload.get("n_streams") != loop.n_streams:
        raise InputError(f"cannot resume {path}: it was written by a run with {payload.get('n_streams')} task "
                         f"stream(s) (ranks), this run has {loop.n_streams}")
    loop.model.load_state_dict(payload["model"])
    optimizer.load_state_dict(payload["optimizer"])
    schedule.load_state_dict(payload["schedule"])
    set_rng_state(payload["rng"])
    loop.streams.load_state_dict(payload["streams"])
    best = payload.get("best_validation")
    if isinstance(best, bool) or not isinstance(best, (int, float)) or not math.isfinite(best):
        raise CheckpointError(f"{path}: malformed best_validation {best!r:.40}; expected a finite number")
    return checkpoint_iteration(payload, path), float(best)


def _best_text(best: float) -> str:
    """The best validation accuracy as the summary prints it (a percentage), "not yet" before the first."""
    return f"{100 * best:.1f}%" if best >= 0 else "not yet"


def _say(bar, what: str) -> None:
    """What a slow step is doing: on the bar when there is one, else as an INFO line."""
    if bar is not None:
        bar.set_description(what)
        bar.refresh()
    else:
        LOG.info("%s", what)


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
