"""The shipped head rule against the nearest class mean on held-out classes (issue 27, item 1):
per image through the exported ONNX model and the runtime's own episode code, paired task by
task (the same tasks, the same embeddings; only the head rule differs).

    python benchmarks/head_rule.py MODEL.onnx [--split test] [--tasks 600]

Prints one row per protocol: within one group, support and query by different drawers where
the data records drawers, 5- and 20-way, 1- and 3-shot (classes with too few images left out).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from anil_edge.cpu_features import cpu_name
from anil_edge.data.provenance import located, provenance_split
from anil_edge.export.head_calibration import QUERIES, Protocol, nearest_mean, protocol_episodes
from anil_edge.runtime import Backbone
from anil_edge.runtime.episodes import predict_episodes


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model")
    ap.add_argument("--split", default="test", choices=("test", "validation"))
    ap.add_argument("--tasks", type=int, default=600)
    ap.add_argument("--seed", type=int, default=1234)
    args = ap.parse_args()
    backbone = Backbone(args.model)
    meta = backbone.metadata
    data = getattr(provenance_split(located(meta.training.data, Path(args.model).parent), None, meta.preprocessing),
                   args.split)
    E = backbone.embed(data.images)
    rules = {"nearest class mean": nearest_mean(meta.adaptation), "shipped": meta.adaptation}
    print(f"# {args.model}; {args.split} split, {data.n_classes} classes; {args.tasks} tasks; CPU {cpu_name()}")
    print(f"# shipped rule: {meta.adaptation.describe()}")
    if meta.head_calibration is not None:
        print(f"# {meta.head_calibration.summary()}")
    print("| protocol | nearest class mean | shipped rule | gain (paired 95% CI) |")
    print("|---|---|---|---|")
    for ways in (5, 20):
        for shots in (1, 3):
            protocol = Protocol(ways, shots, within_group=True, distinct_drawers=data.drawers is not None)
            keep = np.flatnonzero(data.class_sizes() >= shots + QUERIES)
            Ek, [tasks] = protocol_episodes(E, data, protocol, keep, args.tasks, (args.seed,))
            acc = {name: (predict_episodes(Ek, tasks, ways, rule, meta.learned_head) == tasks.query_labels).mean(1)
                   for name, rule in rules.items()}
            diff = acc["shipped"] - acc["nearest class mean"]
            ci = 1.96 * diff.std(ddof=1) / np.sqrt(diff.size)
            cells = [f"{100 * a.mean():.2f} ± {100 * 1.96 * a.std(ddof=1) / np.sqrt(a.size):.2f}" for a in acc.values()]
            print(f"| {protocol.describe()} | {cells[0]} | {cells[1]} | {100 * diff.mean():+.2f} ± {100 * ci:.2f} |")


if __name__ == "__main__":
    main()
