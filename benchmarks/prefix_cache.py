"""Seconds per meta-iteration with and without the frozen-prefix cache (issue 27, item 3):
EfficientNet-Lite0 (random weights: speed only) at 128 px, the `photos` preset's tasks (10-way
1-shot, 1 query, meta-batch 4), frozen BatchNorm, fp32, the `fast` engine; the cache warmed
(every image of the timed tasks already in it, as after the first pass over a data set).

    python benchmarks/prefix_cache.py [--frozen 2 3 4 5] [--repeats 7]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from anil_edge.cpu_features import cpu_name
from anil_edge.data.image_set import ImageSet
from anil_edge.data.tasks import fixed_tasks
from anil_edge.runtime.adaptation import Adaptation
from anil_edge.runtime.metadata import Preprocessing
from anil_edge.train.backbones import BackboneConfig
from anil_edge.train.batches import BatchMaker, TaskBatch
from anil_edge.train.engines import fast_meta_loss
from anil_edge.train.model import AnilModel
from anil_edge.train.prefix_cache import PrefixCache

SIZE, WAYS, META_BATCH = 128, 10, 4


def step_seconds(model: AnilModel, make_batch, repeats: int) -> float:
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    times = []
    for i in range(repeats + 1):
        start = time.perf_counter()
        loss, _ = fast_meta_loss(model, make_batch(i), Adaptation())
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        times.append(time.perf_counter() - start)
    return float(np.median(times[1:]))  # the first: allocation warm-up


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frozen", type=int, nargs="+", default=[2, 3, 4, 5])
    ap.add_argument("--repeats", type=int, default=7)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(40), 2)
    data = ImageSet(rng.integers(0, 256, (labels.size, SIZE, SIZE, 3), np.uint8), labels,
                    tuple(f"c{c}" for c in range(40)), ("g",) * 40)
    prep = Preprocessing((SIZE, SIZE), 3, (0.5,) * 3, (0.5,) * 3)
    maker = BatchMaker(data, prep, torch.device("cpu"))
    tasks = [fixed_tasks(data, ways=WAYS, shots=1, queries=1, tasks=META_BATCH, seed=s) for s in range(args.repeats + 1)]
    print(f"# EfficientNet-Lite0 {SIZE} px, {WAYS}-way 1-shot 1-query, meta-batch {META_BATCH}, fp32, "
          f"{torch.get_num_threads()} threads; CPU {cpu_name()}; median of {args.repeats}")
    print("| frozen stages | s/it uncached | s/it cached | speed-up |")
    print("|---|---|---|---|")
    for frozen in args.frozen:
        torch.manual_seed(0)
        model = AnilModel(BackboneConfig(3, SIZE, arch="timm:tf_efficientnet_lite0", embedding="cosine"), WAYS,
                          freeze_bn=True)
        model.backbone.features.freeze_stages(frozen)
        model.train()
        cache = PrefixCache(model, maker, 2**31)

        def plain(i, t=tasks):
            return TaskBatch(maker.images(t[i].support), torch.from_numpy(t[i].support_labels),
                             maker.images(t[i].query), torch.from_numpy(t[i].query_labels))

        def cached(i, t=tasks, c=cache):
            return TaskBatch(c.images(t[i].support), torch.from_numpy(t[i].support_labels),
                             c.images(t[i].query), torch.from_numpy(t[i].query_labels), prefixed=True)

        for i in range(len(tasks)):  # warm the cache: every image the timed steps draw
            cached(i)
        before, after = step_seconds(model, plain, args.repeats), step_seconds(model, cached, args.repeats)
        print(f"| {frozen} | {before:.3f} | {after:.3f} | {before / after:.2f}× |")


if __name__ == "__main__":
    main()
