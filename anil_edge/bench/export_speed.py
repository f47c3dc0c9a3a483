"""Benchmark: embedding speed of the exported backbone — PyTorch eager, TorchScript, ORT FP32,
ORT INT8 in each format of :mod:`anil_edge.export.quantize` — at 1 and 2 threads, batch-1
latency and batch-64 throughput, for the 28×28 and 84×84 Conv-4 (and, with --device cuda,
PyTorch CUDA and ORT's CUDA provider when installed). The header names the CPU and says
whether it has native INT8 dot products (VNNI, AMX, ARM dot product): without them INT8 is
usually no faster than FP32.

Weights are random (speed does not depend on them); INT8 is calibrated on random images.
``--backbone timm:NAME --sizes 224 160 128`` times a timm backbone (RGB) at those input sizes
instead: the photo models' per-image latency, FP32 vs INT8.

    anil-edge bench export [--repeats 200]
    anil-edge bench export --backbone timm:tf_efficientnet_lite0 --sizes 224 160 128 --repeats 50
"""

from __future__ import annotations

import argparse
import copy
import os
import tempfile
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch

from anil_edge.bench.timing import median_seconds
from anil_edge.cpu_features import cpu_name, int8_speed_note
from anil_edge.export.onnx_export import export_onnx
from anil_edge.export.quantize import FORMATS, quantize_int8
from anil_edge.export.torchscript_export import export_torchscript, read_torchscript_metadata
from anil_edge.runtime.adaptation import Adaptation
from anil_edge.runtime.metadata import DataProvenance, LearnedHead, Preprocessing, TrainingInfo
from anil_edge.train.backbones import BackboneConfig, build_backbone

MODELS = {"conv4 28x28x1 (64-d)": (1, 28), "conv4 84x84x3 (1600-d)": (3, 84)}


def export_all(channels: int, size: int, folder: Path, arch: str = "conv4") -> tuple[torch.nn.Module, dict[str, Path]]:
    torch.manual_seed(0)
    model = build_backbone(BackboneConfig(channels, size, arch=arch, embedding="raw")).eval()
    prep = Preprocessing((size, size), channels, (0.5,) * channels, (0.25,) * channels)
    dim = model.embedding_dim
    head = LearnedHead(np.zeros((5, dim), np.float32), np.zeros(5, np.float32))
    paths = {k: folder / f"m{size}.{k}" for k in ("onnx", "ts", *(f"{fmt}.onnx" for fmt in FORMATS))}
    meta = export_onnx(model, paths["onnx"], preprocessing=prep, adaptation=Adaptation(), learned_head=head,
                       training=TrainingInfo(5, 1, DataProvenance("bench")))
    calibration = np.random.default_rng(0).standard_normal((128, channels, size, size)).astype(np.float32)
    for fmt in FORMATS:
        quantize_int8(paths["onnx"], paths[f"{fmt}.onnx"], calibration, fmt=fmt)
    export_torchscript(model, paths["ts"], meta)
    return model, paths


def runners(model, paths: dict[str, Path], threads: int, device: str):
    torch.set_num_threads(threads)
    scripted, _ = read_torchscript_metadata(paths["ts"])
    options = ort.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
    cpu = ["CPUExecutionProvider"]
    fp32 = ort.InferenceSession(str(paths["onnx"]), options, providers=cpu)
    int8 = {fmt: ort.InferenceSession(str(paths[f"{fmt}.onnx"]), options, providers=cpu) for fmt in FORMATS}

    def eager(x):
        with torch.no_grad():
            return model(torch.from_numpy(x))

    def script(x):
        with torch.no_grad():
            return scripted(torch.from_numpy(x))

    def session_runner(session):
        return lambda x: session.run(None, {"images": x})

    rows = {"pytorch eager": eager, "torchscript": script, "ort fp32": session_runner(fp32)}
    rows.update({f"ort int8 {fmt}": session_runner(session) for fmt, session in int8.items()})
    if device == "cuda":
        gpu_model = copy.deepcopy(model).to("cuda")

        def cuda(x):
            with torch.no_grad():
                out = gpu_model(torch.from_numpy(x).to("cuda"))
                torch.cuda.synchronize()
                return out

        rows["pytorch cuda"] = cuda
        if "CUDAExecutionProvider" in ort.get_available_providers():
            gpu = ort.InferenceSession(str(paths["onnx"]), options, providers=["CUDAExecutionProvider"])
            rows["ort cuda fp32"] = lambda x: gpu.run(None, {"images": x})
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=200, help="timed batch-1 calls per row (default 200)")
    parser.add_argument("--device", default="cpu", help="cpu, or cuda to add GPU rows")
    parser.add_argument("--backbone", help="a timm:NAME backbone (RGB) instead of the two Conv-4s")
    parser.add_argument("--sizes", type=int, nargs="+", default=[224, 160, 128], help="input sizes for --backbone")
    args = parser.parse_args(argv)
    models = {f"{args.backbone} {s}x{s}x3": (3, s) for s in args.sizes} if args.backbone else MODELS
    card = torch.cuda.get_device_name() if args.device == "cuda" else cpu_name()
    print(f"# embedding speed on {card}, {os.cpu_count()} CPUs, torch {torch.__version__}, onnxruntime {ort.__version__}; "
          f"{int8_speed_note()}")
    print("| model | threads | runtime | batch-1 latency ms | batch-64 images/s | latency vs eager | vs ort fp32 |")
    print("|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for name, (channels, size) in models.items():
            model, paths = export_all(channels, size, Path(tmp), args.backbone or "conv4")
            rng = np.random.default_rng(1)
            one = rng.standard_normal((1, channels, size, size)).astype(np.float32)
            batch = rng.standard_normal((64, channels, size, size)).astype(np.float32)
            for threads in (1, 2):
                results = {}
                for label, run in runners(model, paths, threads, args.device).items():
                    latency = median_seconds(lambda run=run, one=one: run(one), args.repeats, warmup=max(3, args.repeats // 20))
                    throughput = 64 / median_seconds(lambda run=run, batch=batch: run(batch),
                                                     max(10, args.repeats // 10), warmup=3)
                    results[label] = (latency, throughput)
                for label, (latency, throughput) in results.items():
                    print(f"| {name} | {threads} | {label} | {1000 * latency:.3f} | {throughput:.0f} | "
                          f"{results['pytorch eager'][0] / latency:.2f}× | {results['ort fp32'][0] / latency:.2f}× |",
                          flush=True)


if __name__ == "__main__":
    main()
