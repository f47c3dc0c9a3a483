"""``anil-edge evaluate``: meta-test accuracy ± 95% CI over held-out tasks, from a PyTorch
checkpoint (.pt) or through the device runtime from an exported model (.onnx).

Either way each task's episode is the runtime's (:mod:`anil_edge.runtime.episodes`, the code
``FewShotClassifier`` runs); an ``.onnx`` model needs no torch (numpy + onnxruntime + pillow)."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from .files import add_precision_option
from .info_lines import info_lines

LOG = logging.getLogger("anil_edge.evaluate")


def add_parser(sub, name: str) -> None:
    p = sub.add_parser(name, help="accuracy ± 95%% CI over held-out tasks", description=__doc__)
    p.add_argument("model", help="a .pt checkpoint or an exported .onnx model")
    p.add_argument("--data", nargs="+", help="data sources (default: those the model was trained on)")
    p.add_argument("--split", default="test", choices=("test", "validation", "all"),
                   help="held-out classes (default: test); all: every class of --data (data the model never saw, "
                        "e.g. for a model trained with --test-fraction 0)")
    p.add_argument("--ways", type=int, default=20, help="classes per task (default: 20)")
    p.add_argument("--shots", type=int, default=1, help="support images per class (default: 1)")
    p.add_argument("--queries", type=int, default=15, help="query images per class (default: 15)")
    p.add_argument("--tasks", type=int, default=600, help="tasks (default: 600)")
    p.add_argument("--seed", type=int, default=1234, help="task sampling seed (default: 1234)")
    p.add_argument("--within-group", action="store_true",
                   help="all classes of a task from one group (alphabet, script, folder parent), as in Lake et al. "
                        "(2015); default: classes from anywhere in the split")
    p.add_argument("--distinct-drawers", action="store_true",
                   help="support and query images drawn by different people, as in Lake et al.'s one-shot runs "
                        "(data that records drawers: Omniglot's <character>_<drawer>.png)")
    p.add_argument("--json", action="store_true", help="print the result as JSON (with every task's accuracy)")
    add_precision_option(p)  # an .onnx model: which file of its export runs


def run(args: argparse.Namespace) -> int:
    from ..data.scoring import score
    from ..data.tasks import fixed_tasks
    from ..errors import InputError

    if args.tasks < 2 or args.ways < 2 or args.shots < 1 or args.queries < 1:
        raise InputError(f"expected --tasks >= 2, --ways >= 2, --shots >= 1, --queries >= 1, found "
                         f"{args.tasks}, {args.ways}, {args.shots}, {args.queries}")
    if args.precision != "file" and not args.model.lower().endswith(".onnx"):
        raise InputError(f"--precision {args.precision} chooses among an export's .onnx files; {args.model} is a "
                         "checkpoint, evaluated in PyTorch: give the exported model.onnx instead")
    with info_lines(sys.stderr):  # stdout stays the result (--json)
        embeddings, data, predict = _onnx(args) if args.model.lower().endswith(".onnx") else _checkpoint(args)
        LOG.info("scoring %d tasks of %d-way %d-shot", args.tasks, args.ways, args.shots)
    tasks = fixed_tasks(data, ways=args.ways, shots=args.shots, queries=args.queries, tasks=args.tasks,
                        seed=args.seed, name=f"{args.split} set", within_group=args.within_group,
                        distinct_drawers=args.distinct_drawers)
    result = score(predict(embeddings, tasks), tasks)
    if args.json:
        print(json.dumps({"model": args.model, "ways": args.ways, "shots": args.shots, "tasks": result.tasks,
                          "within_group": args.within_group, "distinct_drawers": args.distinct_drawers,
                          "accuracy": result.accuracy, "ci95": result.ci95, "per_task": result.per_task.tolist()}))
    else:
        modes = [m for m, on in (("within groups", args.within_group), ("distinct drawers", args.distinct_drawers)) if on]
        mode = f" ({', '.join(modes)})" if modes else ""
        print(f"{args.ways}-way {args.shots}-shot on {args.split} classes{mode}: {result}")
    return 0


def _checkpoint(args):
    from ..errors import require

    torch = require("torch", "train")
    from ..export.trained import load_trained
    from ..train.batches import BatchMaker
    from ..train.evaluate import embed_images, predict_tasks

    trained = load_trained(args.model)
    data = _classes(trained.config.provenance(), args, trained.preprocessing)
    LOG.info("embedding %d images of %d %s classes with %s", len(data.images), data.n_classes, args.split, args.model)
    E = embed_images(trained.model, BatchMaker(data, trained.preprocessing, torch.device("cpu")))
    return E, data, lambda E, tasks: predict_tasks(trained.model, E, tasks, trained.adaptation, args.ways)


def _onnx(args):
    from ..data.provenance import located
    from ..runtime import Backbone
    from ..runtime.episodes import predict_episodes

    backbone = Backbone(args.model, precision=args.precision)
    meta = backbone.metadata
    data = _classes(located(meta.training.data, Path(args.model).parent), args, meta.preprocessing)
    LOG.info("embedding %d images of %d %s classes with %s", len(data.images), data.n_classes, args.split, args.model)

    def predict(E, tasks):
        return predict_episodes(E, tasks, args.ways, meta.adaptation,
                                meta.learned_head)

    return backbone.embed(data.images), data, predict


def _classes(provenance, args, prep):
    """The classes to score: a split of the data the model was trained on (or of ``--data``, split
    as in training), or with ``--split all`` every class of ``--data``."""
    from ..data.provenance import provenance_split
    from ..data.sources import load_dataset
    from ..errors import InputError

    if args.split == "all":
        if not args.data:
            raise InputError("--split all scores every class of --data: give the data to evaluate on (data the "
                             "model never trained on)")
        return load_dataset(provenance.dataset, tuple(args.data), prep)
    data = getattr(provenance_split(provenance, args.data, prep), args.split)
    if args.split == "test" and data.n_classes == 0:
        raise InputError("the model was trained with test_fraction 0: its data holds no test classes; evaluate on "
                         "other classes with --data DATA --split all (or --split validation)")
    return data
