"""``anil-edge info``: what an exported model says about itself (its metadata)."""

from __future__ import annotations

import argparse
import json


def add_parser(sub, name: str) -> None:
    p = sub.add_parser(name, help="show a model's metadata", description=__doc__)
    p.add_argument("model", help="an .onnx model (or a .ts TorchScript archive) written by anil-edge export")
    p.add_argument("--json", action="store_true", help="print the metadata as JSON")
    p.add_argument("--mobile", action="store_true",
                   help="also report onnxruntime's mobile usability check (NNAPI, Core ML) of the model")


def run(args: argparse.Namespace) -> int:
    if args.model.endswith(".ts"):
        from ..export.torchscript_export import read_torchscript_metadata

        _, meta = read_torchscript_metadata(args.model)
    else:
        from ..runtime.backbone import read_metadata

        meta = read_metadata(args.model)  # any anil-edge model file: float, INT8 or raw-pixel input
    from ..runtime.metadata_props import FORMAT_VERSION, metadata_document

    doc = metadata_document(meta)
    if args.json:
        print(json.dumps(doc, indent=2))
        return 0
    p, a, t = meta.preprocessing, meta.adaptation, meta.training
    rows = [
        ("model", args.model),
        ("input", f"{p.channels} x {p.input_size[0]} x {p.input_size[1]}, mean {p.mean}, std {p.std}, "
                  f"invert {p.invert}, resize {p.resize}"),
        ("embedding", f"{meta.embedding_dim}-d"),
        ("adaptation", f"head_init {a.head_init!r}, {a.adaptation_steps} SGD steps at adaptation_lr "
                       f"{a.adaptation_lr}, meta-learned rows {meta.learned_head.weight.shape}"),
        ("trained", f"{t.ways}-way {t.shots}-shot on {t.data.dataset} {list(t.data.sources)}"),
        ("precision", _precision(meta.extra)),
        ("backbone sha256", meta.backbone_sha256),
        ("anil-edge", f"{meta.anil_edge_version} (read as metadata format {FORMAT_VERSION})"),
    ]
    if meta.extra.get("precision") == "int8":
        from ..cpu_features import cpu_name, int8_speed_note

        rows.append(("this CPU", f"{cpu_name()}: {int8_speed_note()}"))
    width = max(len(k) for k, _ in rows)
    print("\n".join(f"{k:<{width}}  {v}" for k, v in rows))
    if args.mobile:
        from pathlib import Path

        from ..export.mobile import usability_report

        print("\n" + usability_report(Path(args.model)))
    return 0


def _precision(extra) -> str:
    """"fp32", or "int8" with its quantization format (written since the format was chosen)."""
    precision = str(extra.get("precision", "fp32"))
    q = extra.get("quantization")
    if precision != "int8" or not isinstance(q, dict):
        return precision
    safe = "no CPU's kernels saturate" if q.get("avx2_saturation_free") else "can saturate on AVX2-only x86 CPUs"
    return (f"int8, format {q.get('format')}: {q.get('activations')} activations x {q.get('weights')} weights, "
            f"per-channel ({safe})")
