"""Writes a run's checkpoints: every rank hands its task-stream state to rank 0, which saves the
model, optimiser, schedule, RNG and stream states atomically (:func:`.checkpoint.save_checkpoint`)."""

from __future__ import annotations

from pathlib import Path

from ..runtime.documents import to_document
from ..runtime.metadata import Preprocessing
from .checkpoint import rng_state, save_checkpoint
from .distributed import DistContext, gather_to_main
from .loop import MetaLoop
from .speed import SpeedOptions


class CheckpointWriter:
    """Saves checkpoints: every rank hands its task-stream state to rank 0, which writes."""

    def __init__(self, config, loop: MetaLoop, optimizer, schedule, prep: Preprocessing, out: Path,
                 ctx: DistContext, speed: SpeedOptions) -> None:
        self.config, self.loop, self.optimizer, self.schedule = config, loop, optimizer, schedule
        self.prep, self.out, self.ctx, self.speed = prep, out, ctx, speed
        self.saved: dict[str, int] = {}  # file name -> the iteration this run last wrote to it

    def save(self, name: str, iteration: int, best: float) -> None:
        self.saved[name] = iteration
        streams = self.loop.streams.state_dict()
        if self.ctx.world > 1:
            gathered = gather_to_main(streams, self.ctx)
            streams = {k: v for part in (gathered or []) for k, v in part.items()}
        if not self.ctx.main:
            return
        model = self.loop.model
        save_checkpoint(self.out / name, {
            "config": self.config.to_dict(), "model": model.state_dict(), "optimizer": self.optimizer.state_dict(),
            "schedule": self.schedule.state_dict(), "iteration": iteration, "best_validation": best,
            "preprocessing": to_document(self.prep), "embedding_dim": model.embedding_dim, "rng": rng_state(),
            "streams": streams, "n_streams": self.loop.n_streams, "speed": to_document(self.speed),
        })
