"""The backbone's speed options (precision, memory format, chunk), decided on the machine.

``TrainConfig.precision="auto"``, ``channels_last=None`` and ``chunk=-1`` are resolved at the
start of training by timing a few real meta-steps (forward, backward and Adam step of the
configured model and engine, on task-shaped batches) of each candidate on the actual device —
as ``cudnn.benchmark`` and autotuners do — because what pays differs between CPUs: bf16 autocast
and oneDNN's channels-last convolutions are fast on a Sapphire Rapids Xeon (AMX) and several
times slower on an AVX2-only EPYC. bf16 is a candidate only where the device computes it
natively (AMX or AVX512-BF16 on a CPU); GPUs stay in fp32. The decision is cached per device,
torch version, thread count and model/task shape in ``$ANIL_EDGE_CACHE/speed`` (default
``~/.cache/anil-edge``), so later runs start at once.

bf16 and chunking (with BatchNorm in train mode, each chunk has its own statistics) change the
arithmetic, so the resolved options are stored in every checkpoint and a resumed run keeps them.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from ..atomic import atomic_write
from ..cache import cache_folder
from ..cpu_features import bf16_acceleration, cpu_name
from ..runtime.documents import from_document, parse_json, to_document
from .config import TrainConfig

MAX_CACHE_BYTES = 2**20  # a speed-cache entry holds a few timings

if TYPE_CHECKING:
    from .model import AnilModel

CPU_CHUNK = 128  # the chunk candidate on CPUs: images per backbone call that stay in cache
TIMED_STEPS = 3  # timed meta-steps per candidate (after one warm-up step); their median counts
PRUNE = 1.5  # a candidate whose first timed step is this many times the best median so far stops there
CACHE_VERSION = 1
# The fields that change what a meta-step computes, and so its speed.
SHAPE_FIELDS = ("backbone", "hidden", "blocks", "norm", "embedding", "input_size", "channels", "ways", "shots", "queries",
                "meta_batch", "engine", "adaptation_steps", "head_init", "precision", "channels_last", "chunk")


@dataclass(frozen=True)
class SpeedOptions:
    precision: str  # "fp32", or "bf16": the backbone runs under bf16 autocast
    channels_last: bool  # NHWC memory format for the backbone's convolutions
    chunk: int  # images per backbone call; 0: all at once

    def label(self) -> str:
        return (f"{self.precision}, {'channels-last' if self.channels_last else 'channels-first'}, "
                f"chunk {self.chunk or 'all'}")

    def apply(self, model: AnilModel) -> None:
        """Set these options on an :class:`~anil_edge.train.model.AnilModel` (in place)."""
        model.autocast = torch.bfloat16 if self.precision == "bf16" else None
        model.chunk = self.chunk
        model.channels_last = self.channels_last
        model.to(memory_format=torch.channels_last if self.channels_last else torch.contiguous_format)

    @classmethod
    def from_dict(cls, values: Any) -> SpeedOptions | None:
        """The options a checkpoint or cache entry stored, or None when malformed."""
        options = from_document(cls, values, [])
        return options if options is not None and options.precision in ("fp32", "bf16") and options.chunk >= 0 else None


@dataclass(frozen=True)
class SpeedChoice:
    options: SpeedOptions  # what training runs with
    timings: tuple[tuple[SpeedOptions, float], ...]  # every candidate timed: (options, seconds per meta-step)
    source: str  # "measured", "cached", "fixed" (nothing left to choose) or "checkpoint" (a resumed run)

    def summary(self) -> str:
        """One line: "auto: fp32, channels-first, chunk all — 0.67 s/it; bf16, … was 6.2 s/it"."""
        if not self.timings:
            return f"speed options: {self.options.label()} ({self.source})"
        ranked = sorted(self.timings, key=lambda t: t[1])
        shown = ranked[1:2] + ranked[2:][-1:]  # the runner-up and the slowest
        others = "; ".join(f"{o.label()} was {s:.3g} s/it" for o, s in shown)
        return (f"auto: {self.options.label()} — {dict(self.timings)[self.options]:.3g} s/it"
                + (f"; {others}" if others else "") + f" ({len(self.timings)} option sets "
                + ("timed earlier, cached)" if self.source == "cached" else "timed)"))


def native_bf16(device: torch.device) -> bool:
    """Whether ``device`` computes bf16 natively: a CPU with AMX-BF16 or AVX512-BF16 (asked of
    torch, else the CPU flags). GPUs answer False: training there stays in fp32."""
    if device.type != "cpu":
        return False
    probes = [getattr(torch.cpu, name, None) for name in ("_is_amx_tile_supported", "_is_avx512_bf16_supported")]
    if all(callable(p) for p in probes):
        return any(p() for p in probes)  # type: ignore[misc]
    return bf16_acceleration() is not None


def candidates(config: TrainConfig, device: torch.device, bf16_native: bool) -> list[SpeedOptions]:
    """Every option set left open by the config: fixed fields keep their value."""
    precisions = [config.precision] if config.precision != "auto" else (
        ["fp32", "bf16"] if bf16_native else ["fp32"])
    layouts = [config.channels_last] if config.channels_last is not None else [False, True]
    per_call = config.ways * (config.shots + config.queries) * (config.meta_batch if config.engine == "fast" else 1)
    chunks = [config.chunk] if config.chunk >= 0 else (
        [0, CPU_CHUNK] if device.type == "cpu" and per_call > CPU_CHUNK else [0])
    return [SpeedOptions(p, c, k) for p, c, k in itertools.product(precisions, layouts, chunks)]


def resolve_speed(config: TrainConfig, device: torch.device, *, cache_dir: Path | None = None,
                  timer: Callable[[TrainConfig, SpeedOptions, torch.device, float], float] | None = None) -> SpeedChoice:
    """The fastest candidate for ``config`` on ``device``: from the cache, or timed now."""
    options = candidates(config, device, native_bf16(device))
    if len(options) == 1:
        return SpeedChoice(options[0], (), "fixed")
    path = _cache_path(config, device, cache_dir)
    cached = _read_cache(path, options)
    if cached is not None:
        return SpeedChoice(cached[0], cached[1], "cached")
    time_one = timer or time_meta_step
    timings: list[tuple[SpeedOptions, float]] = []
    for option in options:
        bound = min((s for _, s in timings), default=math.inf)
        timings.append((option, time_one(config, option, device, bound)))
    best = min(timings, key=lambda t: t[1])[0]
    _write_cache(path, best, timings)
    return SpeedChoice(best, tuple(timings), "measured")


def time_meta_step(config: TrainConfig, options: SpeedOptions, device: torch.device, bound: float = math.inf) -> float:
    """Median seconds of one meta-step (forward, backward, Adam) of a fresh copy of the configured
    model with ``options``, on random task-shaped batches; only one timed step when it already
    takes :data:`PRUNE` × ``bound`` (it cannot win). Torch's random state is left as it was."""
    from .engines import ENGINES, descend
    from .model import build_model

    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(0)
        model = build_model(config).to(device).train()
        options.apply(model)
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
        batch = _random_batch(config, device)
        engine, inner = ENGINES[config.engine], config.adaptation()

        def step() -> None:
            descend(optimizer, engine(model, batch, inner)[0])
            if device.type == "cuda":
                torch.cuda.synchronize(device)

        step()  # warm-up: allocations, oneDNN primitive creation, cuDNN algorithm search
        times: list[float] = []
        for _ in range(TIMED_STEPS):
            start = time.perf_counter()
            step()
            times.append(time.perf_counter() - start)
            if len(times) == 1 and times[0] > PRUNE * bound:
                break
    return float(sorted(times)[len(times) // 2])


def _random_batch(config: TrainConfig, device: torch.device):
    from .batches import TaskBatch
    from .device_sampler import task_labels

    c = config
    shape = (c.channels, c.input_size, c.input_size)
    return TaskBatch(torch.randn(c.meta_batch, c.ways * c.shots, *shape, device=device),
                     task_labels(c.meta_batch, c.ways, c.shots, device),
                     torch.randn(c.meta_batch, c.ways * c.queries, *shape, device=device),
                     task_labels(c.meta_batch, c.ways, c.queries, device))


def device_description(device: torch.device) -> str:
    if device.type == "cuda":
        return f"cuda {torch.cuda.get_device_name(device)}"
    return f"cpu {cpu_name()}"


def _cache_path(config: TrainConfig, device: torch.device, cache_dir: Path | None) -> Path:
    folder = cache_dir or cache_folder()
    key = {"version": CACHE_VERSION, "device": device_description(device), "torch": torch.__version__,
           "threads": torch.get_num_threads(), "config": {name: getattr(config, name) for name in SHAPE_FIELDS}}
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:20]
    return folder / "speed" / f"{digest}.json"


def _read_cache(path: Path, options: list[SpeedOptions]) -> tuple[SpeedOptions, tuple[tuple[SpeedOptions, float], ...]] | None:
    """A cached decision among ``options``, or None (missing, unreadable or malformed: time again)."""
    try:
        doc = parse_json(path.read_bytes(), max_bytes=MAX_CACHE_BYTES)
        best = SpeedOptions.from_dict(doc["best"])
        timings = tuple((SpeedOptions.from_dict(o), float(s)) for o, s in doc["timings"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if best not in options or any(o is None or not math.isfinite(s) for o, s in timings):
        return None
    return best, tuple((o, s) for o, s in timings if o is not None)


def _write_cache(path: Path, best: SpeedOptions, timings: list[tuple[SpeedOptions, float]]) -> None:
    """Best effort: a cache that cannot be written only means timing again next time."""
    doc = {"best": to_document(best), "timings": [[to_document(o), s] for o, s in timings]}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_write(path) as handle:
            handle.write(json.dumps(doc, indent=1).encode())
    except OSError:
        pass
