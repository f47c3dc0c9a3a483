"""Deployed accuracy: a trained checkpoint exported to ONNX FP32 and INT8 (every INT8 format of
:mod:`anil_edge.export.quantize`), scored through the device runtime (onnxruntime embeddings +
numpy head steps) on the same held-out tasks as the PyTorch model: accuracy, the change from
PyTorch, the share of identical predictions; and for each INT8 format the export's own check
against FP32 (:mod:`anil_edge.export.int8_check`) and whether AVX2 kernels can saturate it.

    anil-edge bench deployed runs/study15/augment-cosine/last.pt [--tasks 600] [--formats ...]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import onnxruntime as ort
import torch

from anil_edge.cpu_features import cpu_name, int8_speed_note
from anil_edge.data.provenance import provenance_split, training_sample
from anil_edge.data.scoring import score
from anil_edge.data.tasks import fixed_tasks
from anil_edge.export.int8_check import compare_int8
from anil_edge.export.parity import DeployedEmbeddings, compare
from anil_edge.export.pipeline import ExportImages, ExportOptions, export_checkpoint
from anil_edge.export.quantize import FORMATS, quantize_int8
from anil_edge.export.trained import load_trained
from anil_edge.runtime.backbone import Backbone
from anil_edge.train.batches import BatchMaker
from anil_edge.train.evaluate import embed_images, predict_tasks


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoint")
    parser.add_argument("--tasks", type=int, default=600)
    parser.add_argument("--queries", type=int, default=15)
    parser.add_argument("--calibration-images", type=int, default=256)
    parser.add_argument("--data", nargs="+", help="data sources if not where the checkpoint says")
    parser.add_argument("--formats", nargs="+", default=list(FORMATS), choices=list(FORMATS),
                        help="INT8 formats to measure (default: all)")
    args = parser.parse_args(argv)
    trained = load_trained(args.checkpoint)
    config, provenance = trained.config, trained.config.provenance()
    split = provenance_split(provenance, args.data, trained.preprocessing)
    test = split.test
    calibration = training_sample(split, trained.preprocessing, args.calibration_images)
    E = embed_images(trained.model, BatchMaker(test, trained.preprocessing, torch.device("cpu")))
    print(f"# {args.checkpoint}: {config.backbone} {config.norm}-norm, head init {config.head_init}; "
          f"{test.n_classes} test classes, {args.tasks} tasks, {args.queries} queries per class; "
          f"{cpu_name()}, onnxruntime {ort.__version__}; {int8_speed_note()}")
    print("| tasks | model | PyTorch acc % | deployed acc % | Δ points | identical predictions % | deployed ± CI |")
    print("|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "model.onnx"
        start = time.perf_counter()
        result = export_checkpoint(trained, out, ExportOptions(int8=True),
                                   ExportImages(real=calibration, calibration=calibration))
        export_s = time.perf_counter() - start
        deployed_models = {"onnx fp32": DeployedEmbeddings(result.onnx, test.images)}
        checks = []
        fp32 = Backbone(result.onnx, device="cpu", batch_size=256)
        for fmt in args.formats:
            path = Path(tmp) / f"model.{fmt}.onnx"
            meta = quantize_int8(result.onnx, path, calibration, fmt=fmt)
            deployed_models[f"onnx int8 {fmt}"] = DeployedEmbeddings(path, test.images)
            int8 = Backbone(path, device="cpu", batch_size=256, allow_inexact=True)
            check = compare_int8(fp32, int8, split.validation.images, split.validation.labels)
            checks.append((fmt, meta.extra["quantization"], check))
        for ways in (20, 5):
            tasks = fixed_tasks(test, ways=ways, shots=1, queries=args.queries, tasks=args.tasks, seed=1234)
            reference = predict_tasks(trained.model, E, tasks, trained.adaptation, ways)
            for name, model in deployed_models.items():
                deployed = model.predict(tasks, ways)
                report = compare(reference, deployed, tasks.query_labels)
                ci = score(deployed, tasks)
                print(f"{report.table_row(f'{ways}-way 1-shot | {name}')} {100 * ci.accuracy:.2f} ± {100 * ci.ci95:.2f} |",
                      flush=True)
    print("\n| INT8 format | weights | AVX2 saturation-free | median cosine | 1st pct cosine | "
          "nearest-class-mean agreement % | export check |")
    print("|---|---|---|---|---|---|---|")
    for fmt, q, check in checks:
        verdict = "; ".join(check.problems()) or "passes"
        print(f"| {fmt} | {q['weights']} | {'yes' if q['avx2_saturation_free'] else 'no'} | {check.median_cosine:.4f} | "
              f"{check.low_cosine:.4f} | {100 * (check.ncm_agreement or 0):.1f} | {verdict} |")
    print(f"\nexport with validation and INT8 calibration: {export_s:.1f} s")


if __name__ == "__main__":
    main()
