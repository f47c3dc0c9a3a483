"""``anil-edge info``: what an exported model says about itself (its metadata)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def add_parser(sub, name: str) -> None:
    p = sub.add_parser(name, help="show a model's metadata", description=__doc__)
    p.add_argument("model", help="an .onnx model (or a .ts TorchScript archive) written by anil-edge export")
    p.add_argument("--json", action="store_true", help="print the metadata as JSON")
    p.add_argument("--mobile", action="store_true",
                   help="also check which mobile execution providers (NNAPI, Core ML) take the file a phone runs: "
                        "the pixel model (model.pixels.onnx) beside a model.onnx, else the model itself")
    p.add_argument("--verbose", action="store_true", help="with --mobile: also print onnxruntime's full report")


def run(args: argparse.Namespace) -> int:
    if args.model.endswith(".ts"):
        from ..export.torchscript_export import read_torchscript_metadata

        _, meta = read_torchscript_metadata(args.model)
        inputs: list[tuple[str, str, list]] = []
        file_format = "2"  # the TorchScript archive carries the current document
    else:
        from ..runtime.backbone import read_model_file

        meta, inputs, file_format = read_model_file(args.model)  # any anil-edge model file: float, INT8, pixels, .ort
    from ..runtime.metadata_props import metadata_document

    doc = metadata_document(meta)
    if args.json:
        print(json.dumps(doc, indent=2))
        return 0
    p, a, t = meta.preprocessing, meta.adaptation, meta.training
    rows = [
        ("model", args.model),
        *(("file input", _describe(name, kind, shape)) for name, kind, shape in inputs),
        ("preprocessing", f"{p.channels} x {p.input_size[0]} x {p.input_size[1]}, mean {p.mean}, std {p.std}, "
                          f"invert {p.invert}, resize {p.resize}" + (f", centre crop {p.crop_pct:g}" if p.crop == "center"
                                                                     else "")),
        ("clients resize", _client_resize(p)),
        ("embedding", f"{meta.embedding_dim}-d" + (f" from {meta.extra['backbone']}" if "backbone" in meta.extra else "")
                      + (f", pretrained {meta.extra['pretrained']}" if "pretrained" in meta.extra else "")),
        ("adaptation", f"{a.describe()}; meta-learned rows {meta.learned_head.weight.shape}"),
        ("head rule", meta.head_calibration.summary() if meta.head_calibration else "as trained (not calibrated)"),
        ("whitening", meta.whitening.summary() if meta.whitening else "none (not calibrated)"),
        ("trained", f"{t.ways}-way {t.shots}-shot on {t.data.dataset} {list(t.data.sources)}"),
        ("precision", _precision(meta.extra)),
        ("backbone sha256", meta.backbone_sha256),
        ("anil-edge", f"written by {meta.anil_edge_version}, metadata format {file_format}"),
    ]
    quantization = meta.extra.get("quantization")
    if meta.extra.get("precision") == "int8" and isinstance(quantization, dict):
        from ..runtime.int8_variants import where_int8_runs

        rows.append(("int8 runs", where_int8_runs(quantization)))
    if len(inputs) == 1 and inputs[0][1] == "float" and len(inputs[0][2]) == 4:  # a float backbone: FP32 or INT8
        rows.append(("this CPU", _auto_choice(Path(args.model))))
    width = max(len(k) for k, _ in rows)
    print("\n".join(f"{k:<{width}}  {v}" for k, v in rows))
    if args.mobile:
        _print_mobile(Path(args.model), args.verbose)
    return 0


def _auto_choice(model: Path) -> str:
    """The file ``precision='auto'`` (``--precision auto``) loads for ``model`` on this CPU, and why."""
    from ..cpu_features import cpu_class, cpu_name
    from ..runtime.backbone import read_metadata
    from ..runtime.int8_variants import choose_backbone, int8_quantization

    choice = choose_backbone(model, "auto", cpu_class(), lambda path: int8_quantization(read_metadata(path)))
    return f"{cpu_name()} (class {cpu_class()}): precision 'auto' loads {choice.path.name}; {'; '.join(choice.reasons)}"


def _print_mobile(model: Path, verbose: bool) -> None:
    """onnxruntime's usability verdicts for the file a phone runs (NNAPI, Core ML)."""
    from ..errors import InputError
    from ..export.mobile import mobile_verdicts, usability_report, verdict_table
    from ..runtime.export_files import SUFFIXES, beside, family_base

    if model.suffix.lower() == ".ort":
        raise InputError(f"--mobile checks .onnx files; {model} is already in the .ort format: run it on the .onnx "
                         f"it was converted from ({model.with_suffix('.onnx').name})")
    if model.suffix.lower() != ".onnx":  # TorchScript: onnxruntime's checker would fail on it with INVALID_PROTOBUF
        raise InputError(f"--mobile checks .onnx files (what onnxruntime runs on a phone); {model.name} is not one: "
                         f"run it on the model.onnx exported beside it")
    pixels = beside(model, SUFFIXES["backbone_pixels"])
    target = pixels if not model.name.endswith("." + SUFFIXES["backbone_pixels"]) and pixels.is_file() else model
    note = f" (the pixel model beside {model.name}: the file a phone runs)" if target != model else ""
    rows = mobile_verdicts(target)
    print(f"\nmobile: onnxruntime's usability check of {target.name}{note}")
    print(verdict_table(rows))
    if any(row.if_fixed for row in rows):
        print(f"{target.name} has dynamic shapes: NNAPI and Core ML need static ones (anil-edge export --fixed-batch 1)")
    qdq = {"QuantizeLinear", "DequantizeLinear"}
    no_qdq = [row.ep for row in rows if qdq & {op.rpartition(":")[2] for op in row.unsupported}]
    if no_qdq:
        fp32 = beside(family_base(model), SUFFIXES["backbone_pixels"]).name
        print(f"{', '.join(no_qdq)} cannot run INT8 (QDQ) graphs: with {'it' if len(no_qdq) == 1 else 'them'} ship "
              f"{fp32} (FP32)")
    if verbose:
        print("\n" + usability_report(target))


def _client_resize(p) -> str:
    """How non-Python clients bring an image to the model's size."""
    if p.resize == "nearest":
        return ("no preprocessing graph: 'nearest' is not a filter model.preprocess.onnx builds; clients must feed "
                f"{p.input_size[0]}x{p.input_size[1]} images")
    return f"model.preprocess.onnx: any RGBA size, {p.resize} as training decoded, bit for bit"


def _describe(name: str, kind: str, shape: list) -> str:
    """``pixels uint8 [1, 28, 28, 1] (N, H, W, C)``: an input as the file declares it."""
    layout = "(N, H, W, C) raw pixels" if kind == "uint8" else "(N, C, H, W) preprocessed" if len(shape) == 4 else ""
    kind = {"float": "float32", "double": "float64"}.get(kind, kind)  # onnxruntime's names for them
    return f"{name} {kind} [{', '.join(map(str, shape))}] {layout}".rstrip()


def _precision(extra) -> str:
    """"fp32", or "int8" with its quantization format (written since the format was chosen)."""
    precision = str(extra.get("precision", "fp32"))
    q = extra.get("quantization")
    if precision != "int8" or not isinstance(q, dict):
        return precision
    safe = "no CPU's kernels saturate" if q.get("avx2_saturation_free") else "can saturate on AVX2-only x86 CPUs"
    return (f"int8, format {q.get('format')}: {q.get('activations')} activations x {q.get('weights')} weights, "
            f"per-channel ({safe})")
