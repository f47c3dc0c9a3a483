"""Training metrics: one JSON object per line (``metrics.jsonl``) and a PNG of the curves."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from ..atomic import atomic_write
from ..errors import require


class MetricsLog:
    """Appends records to a JSONL file; on resume, drops records from iterations being redone."""

    def __init__(self, path: str | os.PathLike[str], resume_from: int | None = None) -> None:
        self.path = Path(path)
        if resume_from is None:
            self.path.write_text("")
        elif self.path.exists():
            kept = [r for r in read_metrics(self.path) if r["iteration"] < resume_from]
            with atomic_write(self.path) as handle:
                handle.write("".join(json.dumps(r) + "\n" for r in kept).encode())

    def write(self, record: dict[str, Any]) -> None:
        with self.path.open("a") as handle:
            handle.write(json.dumps(record) + "\n")


class RecordWindow:
    """Sums of the loss and accuracy since the last record, kept on the device."""

    def __init__(self, start: int) -> None:
        self.first, self.count = start, 0
        self.sums: torch.Tensor | None = None
        self.tick = time.perf_counter()

    def add(self, loss: torch.Tensor, acc: torch.Tensor) -> None:
        pair = torch.stack([loss.float(), acc.float()])
        self.sums = pair if self.sums is None else self.sums + pair
        self.count += 1

    def flush(self, reduce: Callable[[torch.Tensor], list[float]]) -> tuple[float, float, int, float]:
        """Mean loss and accuracy over the window as ``reduce`` reads them off the device (and
        averages them over ranks; a non-finite loss stays non-finite), the window's first
        iteration and its seconds; starts the next window."""
        if self.sums is None:
            raise RuntimeError("flush() before any add()")
        loss, acc = reduce(self.sums / self.count)  # the one wait for the device
        first, seconds = self.first, time.perf_counter() - self.tick
        self.first, self.count, self.sums = first + self.count, 0, None
        self.tick = time.perf_counter()
        return loss, acc, first, seconds

    def restart(self) -> None:
        self.tick = time.perf_counter()


def read_metrics(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Every complete record of a metrics file (a torn last line from a crash is skipped)."""
    records = []
    for line in Path(path).read_text().splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return records


def plot_curves(metrics: str | os.PathLike[str], png: str | os.PathLike[str]) -> None:
    """Training loss / accuracy and validation accuracy against the iteration, as a PNG."""
    matplotlib = require("matplotlib", "train")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    records = read_metrics(metrics)
    train = [r for r in records if r["split"] == "train"]
    val = [r for r in records if r["split"] == "validation"]
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 4))
    ax_loss.plot([r["iteration"] for r in train], [r["loss"] for r in train], lw=0.8, label="train query loss")
    ax_loss.set(xlabel="meta-iteration", ylabel="loss", yscale="log")
    ax_acc.plot([r["iteration"] for r in train], [r["accuracy"] for r in train], lw=0.8, alpha=0.6, label="train (query)")
    if val:
        ax_acc.errorbar([r["iteration"] for r in val], [r["accuracy"] for r in val],
                        yerr=[r["ci95"] for r in val], marker="o", ms=3, label="validation (per-image)")
    ax_acc.set(xlabel="meta-iteration", ylabel="accuracy", ylim=(0, 1))
    for ax in (ax_loss, ax_acc):
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    with atomic_write(png) as handle:
        fig.savefig(handle, format="png", dpi=100)
    plt.close(fig)
