"""One meta-iteration of ANIL's outer loop, and validation on fixed tasks.

A meta-batch is drawn from this process's task streams (:mod:`.streams`): all of them in a
single process, its own under torchrun, where gradients are then averaged across ranks
(:mod:`.distributed`) — DistributedDataParallel for the ``fast`` engine, an explicit
all-reduce for ``l2l``.
"""

from __future__ import annotations

import numpy as np
import torch

from ..data.scoring import EvalResult, score
from ..data.splits import Split
from ..data.tasks import TaskIndices, fixed_tasks
from ..errors import InputError
from ..runtime.metadata import Preprocessing
from .batches import BatchMaker, TaskBatch
from .bn_stats import recalibrate_batchnorm
from .config import TrainConfig
from .deployment_sampler import DeploymentTaskSampler
from .device_sampler import DeviceTaskSampler, task_labels
from .distributed import SINGLE, DistContext, average_gradients, mean_over_ranks, wrap_ddp
from .engines import ENGINES, MetaLoss, descend
from .evaluate import embed_images, predict_tasks
from .model import AnilModel
from .prefix_cache import PrefixCache
from .streams import TaskStreams
from .task_sampler import TaskSampler


class MetaLoop:
    def __init__(self, config: TrainConfig, split: Split, prep: Preprocessing, model: AnilModel,
                 device: torch.device, ctx: DistContext = SINGLE) -> None:
        self.config, self.model, self.ctx = config, model, ctx
        self.n_streams = ctx.world if ctx.world > 1 else config.task_streams
        if config.meta_batch % self.n_streams:
            raise InputError(f"meta_batch {config.meta_batch} must be divisible by the {self.n_streams} task "
                             "streams (one per rank under torchrun)")
        self.per_stream = config.meta_batch // self.n_streams
        self.streams = TaskStreams(config.seed, [ctx.rank] if ctx.world > 1 else list(range(self.n_streams)),
                                   device)
        train_set = split.train.with_rotations() if config.uses_rotations else split.train
        c = config
        self.sampler: TaskSampler | DeviceTaskSampler | DeploymentTaskSampler
        if c.train_tasks == "deployment":
            self.sampler = DeploymentTaskSampler(train_set, ways=c.ways, shots=c.shots, queries=c.queries)
        elif c.sampler == "learn2learn":
            self.sampler = TaskSampler(train_set, ways=c.ways, shots=c.shots, queries=c.queries, name="training set")
        else:
            self.sampler = DeviceTaskSampler(train_set, ways=c.ways, shots=c.shots, queries=c.queries, device=device,
                                             name="training set")
        self.train_maker = BatchMaker(train_set, prep, device)
        self.prefix = PrefixCache(model, self.train_maker, c.prefix_cache_mb * 2**20) if c.prefix_cache else None
        self.val_maker = BatchMaker(split.validation, prep, device)
        self.val_ways = min(config.ways, split.validation.n_classes)
        self.val_tasks = fixed_tasks(split.validation, ways=self.val_ways, shots=config.shots,
                                     queries=config.queries, tasks=config.eval_tasks, seed=config.seed + 1,
                                     name="validation set")
        self.val_group_tasks = _within_group_tasks(split.validation, self.val_ways, config)
        self.val_drawers = split.validation.drawers is not None
        self.within_group: EvalResult | None = None  # the last validation's within-group score
        self.adaptation = config.adaptation()
        meta_loss = MetaLoss(model, ENGINES[config.engine], self.adaptation)
        self.ddp = ctx.world > 1 and config.engine == "fast"
        self.forward = wrap_ddp(meta_loss, device, config.head_init == "prototype") if self.ddp else meta_loss
        self.device = device

    def batch(self) -> TaskBatch:
        parts = [self._stream_batch(s) for s in self.streams.owned]
        if len(parts) == 1:
            return parts[0]
        support, support_labels, query, query_labels = (torch.cat([getattr(p, f) for p in parts])
                                                        for f in ("support", "support_labels", "query", "query_labels"))
        return TaskBatch(support, support_labels, query, query_labels, parts[0].prefixed)

    def _stream_batch(self, stream: int) -> TaskBatch:
        c, generator = self.config, self.streams.torch[stream]
        support: np.ndarray | torch.Tensor
        query: np.ndarray | torch.Tensor
        if not isinstance(self.sampler, DeviceTaskSampler):
            tasks = self.streams.sample(self.sampler, stream, self.per_stream)
            support, query = tasks.support, tasks.query
            support_labels, query_labels = (torch.from_numpy(a).to(self.device)
                                            for a in (tasks.support_labels, tasks.query_labels))
        else:
            support, query = self.sampler.sample(self.per_stream, generator)
            support_labels = task_labels(self.per_stream, c.ways, c.shots, self.device)
            query_labels = task_labels(self.per_stream, c.ways, c.queries, self.device)
        if self.prefix is not None:
            return TaskBatch(self.prefix.images(support), support_labels, self.prefix.images(query), query_labels,
                             prefixed=True)
        images = lambda idx: self.train_maker.images(idx, c.augment, generator, c.stroke_augment)  # noqa: E731
        return TaskBatch(images(support), support_labels, images(query), query_labels)

    def step(self, optimizer: torch.optim.Optimizer) -> tuple[torch.Tensor, torch.Tensor]:
        """One meta-iteration: this rank's loss and accuracy, detached tensors on the device (no
        wait for the device here; :meth:`rank_means` reads them when they are logged)."""
        self.model.train()
        loss, acc = self.forward(self.batch())
        average = self.ctx.world > 1 and not self.ddp
        descend(optimizer, loss, (lambda: average_gradients(self.model, self.ctx.world)) if average else None)
        return loss.detach(), acc.detach()

    def rank_means(self, values: torch.Tensor) -> list[float]:
        """``values`` (k,) as floats, averaged over every rank (one wait for the device)."""
        values = values.double()
        if self.ctx.world > 1:
            values = mean_over_ranks(values)
        return [float(v) for v in values.cpu()]

    def selection_score(self, result: EvalResult) -> float:
        """What best.pt is chosen by: with ``best_by="deployment"`` the within-group score (support
        and query by different drawers where the data records them) when the validation classes
        allow it, else ``result`` (random tasks). Meta-Baseline (Chen et al.) shows random-task
        validation rising while novel-class accuracy falls."""
        if self.config.best_by == "deployment" and self.within_group is not None:
            return self.within_group.accuracy
        return result.accuracy

    @property
    def selection_name(self) -> str:
        """How :meth:`selection_score` validates, for people."""
        if self.config.best_by == "deployment" and self.val_group_tasks is not None:
            return "within group" + (", distinct drawers" if self.val_drawers else "")
        return "random tasks"

    def validate(self) -> EvalResult:
        """Per-image accuracy on the fixed validation tasks (every rank computes the same)."""
        if self.config.recalibrate_bn and not self.config.freezes_bn:  # frozen: the pretrained statistics stay
            recalibrate_batchnorm(self.model, self.train_maker, seed=self.config.seed)
        E = embed_images(self.model, self.val_maker)
        if self.val_group_tasks is not None:
            self.within_group = score(predict_tasks(self.model, E, self.val_group_tasks, self.adaptation,
                                                    self.val_ways), self.val_group_tasks)
        return score(predict_tasks(self.model, E, self.val_tasks, self.adaptation, self.val_ways), self.val_tasks)


def _within_group_tasks(data, ways: int, config: TrainConfig) -> TaskIndices | None:
    """Validation tasks whose classes share a group, when some group has ``ways`` classes — with
    support and query by different people where the data records drawers (Lake et al.'s test)."""
    try:
        return fixed_tasks(data, ways=ways, shots=config.shots, queries=config.queries, tasks=config.eval_tasks,
                           seed=config.seed + 2, name="validation set", within_group=True,
                           distinct_drawers=data.drawers is not None)
    except InputError:
        return None
