"""``anil-edge evaluate``: meta-test accuracy ± 95% CI over held-out tasks, from a PyTorch
checkpoint (.pt) or through the device runtime from an exported model (.onnx)."""

from __future__ import annotations

import argparse
import json


def add_parser(sub, name: str) -> None:
    p = sub.add_parser(name, help="accuracy ± 95%% CI over held-out tasks", description=__doc__)
    p.add_argument("model", help="a .pt checkpoint or an exported .onnx model")
    p.add_argument("--data", nargs="+", help="data sources (default: those the model was trained on)")
    p.add_argument("--split", default="test", choices=("test", "validation"), help="held-out classes (default: test)")
    p.add_argument("--ways", type=int, default=20, help="classes per task (default: 20)")
    p.add_argument("--shots", type=int, default=1, help="support images per class (default: 1)")
    p.add_argument("--queries", type=int, default=15, help="query images per class (default: 15)")
    p.add_argument("--tasks", type=int, default=600, help="tasks (default: 600)")
    p.add_argument("--seed", type=int, default=1234, help="task sampling seed (default: 1234)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")


def run(args: argparse.Namespace) -> int:
    from ..errors import InputError
    from ..train.evaluate import sample_tasks, summarise

    if args.tasks < 2 or args.ways < 2 or args.shots < 1 or args.queries < 1:
        raise InputError(f"expected --tasks >= 2, --ways >= 2, --shots >= 1, --queries >= 1, found "
                         f"{args.tasks}, {args.ways}, {args.shots}, {args.queries}")
    predict, data = _onnx(args) if args.model.endswith(".onnx") else _checkpoint(args)
    tasks = sample_tasks(data, ways=args.ways, shots=args.shots, queries=args.queries, tasks=args.tasks, seed=args.seed)
    result = summarise((predict(tasks) == tasks.query_labels).mean(-1).astype(float))
    if args.json:
        print(json.dumps({"model": args.model, "ways": args.ways, "shots": args.shots, "tasks": result.tasks,
                          "accuracy": result.accuracy, "ci95": result.ci95}))
    else:
        print(f"{args.ways}-way {args.shots}-shot on {args.split} classes: {result}")
    return 0


def _checkpoint(args):
    import torch

    from ..export.trained import load_trained
    from ..train.batches import BatchMaker
    from ..train.engines import InnerLoop
    from ..train.evaluate import embed_images, predict_tasks
    from .data_access import config_split

    trained = load_trained(args.model)
    c = trained.config
    data = getattr(config_split(c, args.data, trained.preprocessing), args.split)
    E = embed_images(trained.model, BatchMaker(data, trained.preprocessing, torch.device("cpu")))
    inner = InnerLoop(c.fast_lr, c.adaptation_steps, c.head_init)
    return (lambda tasks: predict_tasks(trained.model, E, tasks, inner, args.ways)), data


def _onnx(args):
    from ..errors import InputError
    from ..export.parity import runtime_task_predictions
    from ..runtime import Backbone
    from ..train.config import TrainConfig
    from .data_access import config_split

    backbone = Backbone(args.model)
    origin = backbone.metadata.extra.get("data")
    if not isinstance(origin, dict):
        raise InputError(f"{args.model} does not record its training data; evaluate its checkpoint instead")
    config = TrainConfig(dataset=origin["dataset"], data=tuple(origin["sources"]),
                         validation_fraction=origin["validation_fraction"], test_fraction=origin["test_fraction"],
                         split_seed=origin["split_seed"])
    data = getattr(config_split(config, args.data, backbone.metadata.preprocessing), args.split)
    E = backbone.embed(data.images)
    return (lambda tasks: runtime_task_predictions(E, tasks, backbone.metadata.head, args.ways)), data
