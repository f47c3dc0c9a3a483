"""Meta-training on several processes with PyTorch's own engine (torch.distributed, torchrun).

Each rank owns one task stream (:mod:`.streams`) and ``meta_batch / world_size`` tasks of every
meta-batch; gradients are averaged across ranks, so N ranks × (meta-batch / N) is the same
optimisation as one process × meta-batch. The ``fast`` engine runs under
``DistributedDataParallel`` (its meta-loss is one module's forward, so DDP sees the graph);
the ``l2l`` engine, whose ``clone()`` / ``autograd.grad`` conflict with DDP's hooks
(learn2learn issues #128, #170, #197), averages its gradients with an explicit all-reduce.
NCCL on GPUs, gloo on CPUs; collectives time out instead of hanging when a rank dies.
"""

from __future__ import annotations

import datetime
import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from ..errors import InputError


@dataclass(frozen=True)
class DistContext:
    rank: int  # this process, 0 .. world - 1
    world: int  # processes in the job
    local_rank: int  # this process on its node (selects its GPU)

    @property
    def main(self) -> bool:
        return self.rank == 0


SINGLE = DistContext(0, 1, 0)


def launched_by_torchrun() -> bool:
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def init_distributed(device_name: str, timeout_s: float) -> tuple[DistContext, torch.device]:
    """Join the job torchrun started (env:// rendezvous); pick this rank's device and backend."""
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = device_name.startswith("cuda") or (device_name == "auto" and torch.cuda.is_available())
    if use_cuda:
        if not torch.cuda.is_available():
            raise InputError(f"device {device_name!r} asked for, but this torch build sees no CUDA device")
        torch.cuda.set_device(local_rank)
        device = torch.device("cuda", local_rank)
    else:
        device = torch.device("cpu")
    if not dist.is_initialized():
        dist.init_process_group("nccl" if use_cuda else "gloo", timeout=datetime.timedelta(seconds=timeout_s))
    return DistContext(dist.get_rank(), dist.get_world_size(), local_rank), device


def wrap_ddp(module: nn.Module, device: torch.device, unused_parameters: bool) -> nn.Module:
    ids = [device.index] if device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(module, device_ids=ids, find_unused_parameters=unused_parameters,
                                               broadcast_buffers=False)


def average_gradients(model: nn.Module, world: int) -> None:
    """Mean of every parameter's gradient over the ranks (missing gradients count as zeros)."""
    for p in model.parameters():
        if p.grad is None:
            p.grad = torch.zeros_like(p)
        dist.all_reduce(p.grad, op=dist.ReduceOp.SUM)
        p.grad /= world


def mean_over_ranks(values: torch.Tensor) -> torch.Tensor:
    """The element-wise mean of ``values`` over every rank (each rank passes its own)."""
    total = values.clone()
    dist.all_reduce(total, op=dist.ReduceOp.SUM)
    return total / dist.get_world_size()


def gather_to_main(obj: Any, ctx: DistContext) -> list[Any] | None:
    """Every rank's ``obj`` on rank 0 (None elsewhere)."""
    out = [None] * ctx.world if ctx.main else None
    dist.gather_object(obj, out, dst=0)
    return out


def from_main(obj: Any, ctx: DistContext) -> Any:
    """Rank 0's ``obj`` on every rank (``obj`` itself in a single process)."""
    if ctx.world == 1:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def barrier(ctx: DistContext) -> None:
    if ctx.world > 1:
        dist.barrier()


def shutdown(clean: bool = True) -> None:
    """Leave the job. After a clean run every rank meets at a barrier first, so that no rank
    tears its connections down while a peer is still using them; after an error the rank
    leaves at once (torchrun then stops the others)."""
    if dist.is_initialized():
        if clean:
            dist.barrier()
        dist.destroy_process_group()
