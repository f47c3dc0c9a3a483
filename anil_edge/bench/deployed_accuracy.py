"""Deployed accuracy: a trained checkpoint exported to ONNX FP32 and INT8, scored through the
device runtime (onnxruntime embeddings + numpy head steps) on the same held-out tasks as the
PyTorch model: accuracy, the change from PyTorch, and the share of identical predictions.

    anil-edge bench deployed runs/study15/augment-cosine/last.pt [--tasks 600]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

from anil_edge.errors import ModelError
from anil_edge.export.parity import DeployedEmbeddings, compare
from anil_edge.export.pipeline import export_checkpoint
from anil_edge.export.trained import load_trained
from anil_edge.train.batches import BatchMaker
from anil_edge.train.data.config_data import provenance_split, training_sample
from anil_edge.train.data.tasks import fixed_tasks
from anil_edge.train.evaluate import embed_images, predict_tasks
from anil_edge.train.scoring import score


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoint")
    parser.add_argument("--tasks", type=int, default=600)
    parser.add_argument("--queries", type=int, default=15)
    parser.add_argument("--calibration-images", type=int, default=256)
    parser.add_argument("--data", nargs="+", help="data sources if not where the checkpoint says")
    args = parser.parse_args(argv)
    trained = load_trained(args.checkpoint)
    config, provenance = trained.config, trained.config.provenance()
    split = provenance_split(provenance, args.data, trained.preprocessing)
    test = split.test
    calibration = training_sample(split, trained.preprocessing, args.calibration_images)
    E = embed_images(trained.model, BatchMaker(test, trained.preprocessing, torch.device("cpu")))
    print(f"# {args.checkpoint}: {config.backbone} {config.norm}-norm, head init {config.head_init}; "
          f"{test.n_classes} test classes, "
          f"{args.tasks} tasks, {args.queries} queries per class")
    print("| tasks | model | PyTorch acc % | deployed acc % | Δ points | identical predictions % | deployed ± CI |")
    print("|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "model.onnx"
        start = time.perf_counter()
        result = export_checkpoint(trained, out, real_images=calibration, calibration=calibration, int8=True)
        export_s = time.perf_counter() - start
        int8_path = result.int8
        if int8_path is None:  # export_checkpoint(int8=True) always writes it
            raise ModelError("the INT8 export wrote no file")
        deployed_models = {"onnx fp32": DeployedEmbeddings(result.onnx, test.images),
                           "onnx int8": DeployedEmbeddings(int8_path, test.images)}
        for ways in (20, 5):
            tasks = fixed_tasks(test, ways=ways, shots=1, queries=args.queries, tasks=args.tasks, seed=1234)
            reference = predict_tasks(trained.model, E, tasks, trained.adaptation, ways)
            for name, model in deployed_models.items():
                deployed = model.predict(tasks, ways)
                report = compare(reference, deployed, tasks.query_labels)
                ci = score(deployed, tasks)
                print(f"{report.table_row(f'{ways}-way 1-shot | {name}')} {100 * ci.accuracy:.2f} ± {100 * ci.ci95:.2f} |",
                      flush=True)
    print(f"\nexport with validation and INT8 calibration: {export_s:.1f} s")


if __name__ == "__main__":
    main()
