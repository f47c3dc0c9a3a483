"""``anil-edge export``: a training checkpoint -> ONNX FP32 (+ INT8, TorchScript), validated."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..export.onnx_export import OPSET
from ..export.quantize import DEFAULT_FORMAT, FORMATS
from ..export.quantize import METHODS as CALIBRATION_METHODS
from ..export.validate import FP32_ATOL

INT8_REFUSED = 2  # exit status when --int8 was asked for and not shipped (FP32 and the rest written)


def add_parser(sub, name: str) -> None:
    p = sub.add_parser(name, help="checkpoint -> ONNX FP32 (+ INT8, TorchScript)", description=__doc__)
    p.add_argument("checkpoint", help="a .pt checkpoint written by anil-edge train (best.pt or last.pt)")
    p.add_argument("--out", help="the .onnx path (default: model.onnx beside the checkpoint)")
    p.add_argument("--int8", action="store_true", help="also write OUT.int8.onnx (static QDQ, per-channel)")
    p.add_argument("--int8-format", default=DEFAULT_FORMAT, choices=("auto", *FORMATS),
                   help=f"INT8 activation x weight types (default: {DEFAULT_FORMAT}: uint8 x 7-bit int8, which no CPU's "
                        "kernels saturate, else uint8 x uint8 if 7 bits lose too much; see anil_edge/export/quantize.py)")
    p.add_argument("--torchscript", action="store_true", help="also write OUT.ts (traced TorchScript)")
    p.add_argument("--opset", type=int, default=OPSET, help=f"ONNX opset (default: {OPSET})")
    p.add_argument("--calibration-images", type=int, default=256,
                   help="training images for INT8 calibration and the parity checks (default: 256)")
    p.add_argument("--calibration-method", default=CALIBRATION_METHODS[0], choices=CALIBRATION_METHODS,
                   help=f"INT8 activation-range calibration (default: {CALIBRATION_METHODS[0]})")
    p.add_argument("--no-bias-correction", dest="bias_correction", action="store_false",
                   help="INT8: leave each convolution's bias as quantized (default: correct it for the rounding of its "
                        "weights, Nagel et al. 2019; see anil_edge/export/bias_correction.py)")
    p.add_argument("--data", nargs="+", help="training data sources, if not where the checkpoint's config says")
    p.add_argument("--fixed-batch", type=int, metavar="N",
                   help="give OUT.pixels.onnx a fixed batch of N images (NNAPI and Core ML need static shapes)")
    p.add_argument("--ort", action="store_true",
                   help="also write .ort files (onnxruntime's mobile format) of the pixel model and head graphs, "
                        "with required_operators.config for a reduced onnxruntime build")
    p.add_argument("--head-rule", default="calibrate", choices=("calibrate", "trained"),
                   help="the head rule devices run: calibrate (default): the best of a grid of logit scales, step "
                        "sizes, steps and pulls on validation episodes, or the nearest class mean where none beats it "
                        "with 95%% confidence; trained: the inner loop the model trained with")
    p.add_argument("--whitening", default="calibrate", choices=("calibrate", "off"),
                   help="calibrate (default): end the backbone with within-class whitening fitted on the training "
                        "classes where it makes the nearest class mean better on the validation classes (every "
                        "protocol, 95%% confidence; see anil_edge/runtime/whitening.py); off: never")
    p.add_argument("--no-pixel-input", dest="pixel_input", action="store_false",
                   help="do not write OUT.pixels.onnx (the backbone taking raw uint8 pixels, for apps in other "
                        "languages)")


def run(args: argparse.Namespace) -> int:
    from ..data.provenance import provenance_split, training_sample
    from ..export.head_calibration import WAYS as HEAD_WAYS
    from ..export.open_set_calibration import MIN_TAIL_IMAGES, SHOTS, WAYS
    from ..export.pipeline import ExportImages, ExportOptions, check_export_target, export_checkpoint
    from ..export.trained import load_trained
    from ..export.whitening import fit_sample
    from ..runtime.open_set import TARGET_RATES

    checkpoint = Path(args.checkpoint)
    out = Path(args.out) if args.out else checkpoint.with_name("model.onnx")
    # before the (slow) checkpoint and data loading
    options = ExportOptions(int8=args.int8, torchscript=args.torchscript, opset=args.opset,
                            calibration_method=args.calibration_method, int8_format=args.int8_format,
                            bias_correction=args.bias_correction,
                            pixel_input=args.pixel_input, fixed_batch=args.fixed_batch, ort_format=args.ort,
                            calibrate_head=args.head_rule == "calibrate", whiten=args.whitening == "calibrate")
    check_export_target(out, checkpoint)
    trained = load_trained(checkpoint)
    split = provenance_split(trained.config.provenance(), args.data, trained.preprocessing)
    real = training_sample(split, trained.preprocessing, args.calibration_images)
    images = ExportImages(real=real, calibration=real, validation=split.validation,
                          training=fit_sample(split.train) if options.whiten else None)
    result = export_checkpoint(trained, out, options, images)
    worst = max(c.max_abs for c in result.report.comparisons)
    print(f"validated: {len(result.report.comparisons)} comparisons with PyTorch, worst max |Δ| {worst:.2e} "
          f"(≤ {FP32_ATOL:g} × max(1, |embedding|))")
    if result.int8_check is not None:
        print(f"{result.int8_check.summary()} (format {result.int8_check.format})")
    if result.int8 is not None and result.int8_quantization is not None:
        print(_int8_where(result.int8_quantization))
    if result.whitening is not None:
        print(result.whitening.summary())
    if result.head_calibration is not None:
        print(result.head_calibration.summary())
    elif args.head_rule == "calibrate":
        print(f"head rule: not calibrated ({split.validation.n_classes} validation classes cannot supply "
              f"{min(HEAD_WAYS)}-way episodes); ships the trained rule ({trained.adaptation.describe()})")
    if result.open_set is None:
        print(f"open-set rejection: not calibrated ({split.validation.n_classes} validation classes, "
              f"{len(split.validation.labels)} images: it needs {WAYS + 1} classes with {SHOTS + 1} or more images, "
              f"and {MIN_TAIL_IMAGES / max(TARGET_RATES):.0f} images to claim a {100 * max(TARGET_RATES):g}% "
              f"false-accept rate ({MIN_TAIL_IMAGES / min(TARGET_RATES):.0f} for {100 * min(TARGET_RATES):g}%))")
    else:
        rates = ", ".join(f"false-accept {100 * r:g}%: threshold {t:.3f} (accepts {100 * result.open_set.true_accept[r]:.1f}"
                          f"% of known queries)" for r, t in result.open_set.thresholds.items())
        print(f"open-set rejection calibrated on {split.validation.n_classes} validation classes: {rates}")
    for path in (result.onnx, result.int8, result.torchscript, *result.deployment.values()):
        if path is not None:
            print(f"wrote {path} ({path.stat().st_size / 1e6:.2f} MB)")
    if result.int8_refused is not None:
        print(f"error: {result.int8_refused}. Every other file above was written (FP32 ships); "
              f"{_untried_formats(args.int8_format)}", file=sys.stderr)
        return INT8_REFUSED
    return 0


def _int8_where(quantization: dict) -> str:
    """The INT8 model's speed here and where each client's precision 'auto' runs it."""
    from ..runtime.int8_variants import Int8Speed, where_int8_runs

    speed = Int8Speed(**quantization["measured"])
    return (f"INT8 on this CPU ({speed.cpu}, class {speed.cpu_class}): {speed.int8_ms:.2f} vs {speed.fp32_ms:.2f} ms "
            f"per image, {speed.speedup:.2f}x FP32 (batch 1, 1 thread); {where_int8_runs(quantization)}")


def _untried_formats(fmt: str) -> str:
    """What else to try after ``fmt`` failed the INT8 check."""
    from ..export.quantize import AUTO_FORMATS, FORMATS

    tried = AUTO_FORMATS if fmt == "auto" else (fmt,)
    rest = [f for f in FORMATS if f not in tried]
    hint = {"u8s8": "8-bit signed weights: exact and fast on VNNI, AMX and ARM64 CPUs, may saturate on AVX2-only x86"}
    return "not tried: " + "; ".join(f"--int8-format {f}" + (f" ({hint[f]})" if f in hint else "") for f in rest) \
        if rest else "every INT8 format was tried"
