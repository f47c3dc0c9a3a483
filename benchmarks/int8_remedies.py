"""INT8 remedies for a model whose signed weights fail the export's check (issue 29 item 1): each
calibration method and node exclusion alone and combined, for 7- and 8-bit signed weights. Each
row is checked as the export checks (median and 1st-percentile embedding cosine to FP32,
nearest-class-mean agreement on the validation classes: anil_edge/export/int8_check.py) and
timed as the export times (batch 1, one thread: anil_edge/export/int8_profile.py).

    python benchmarks/int8_remedies.py RUN/model.onnx [--calibration-images 300]

MODEL is an export (its data sources are read from its metadata, relative to its folder).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from anil_edge.cpu_features import cpu_class, cpu_name
from anil_edge.data.provenance import located, provenance_split, training_sample
from anil_edge.export.int8_check import compare_int8
from anil_edge.export.int8_profile import measure_int8_speed
from anil_edge.export.quantize import quantize_int8
from anil_edge.runtime import Backbone

# (format, calibration method, node kinds kept in FP32, bias correction): each remedy alone on 7-bit
# signed weights, then combined; uint8 and 8-bit signed weights with and without bias correction
ROWS = (
    *(("u8s8-reduced", method, (), bc) for method in ("minmax", "percentile", "entropy") for bc in (False, True)),
    *(("u8s8-reduced", "minmax", ("depthwise",), bc) for bc in (False, True)),
    *((fmt, "minmax", (), bc) for fmt in ("u8u8", "u8s8") for bc in (False, True)),
)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model")
    ap.add_argument("--calibration-images", type=int, default=300)
    args = ap.parse_args()
    fp32 = Backbone(args.model, device="cpu", batch_size=256)
    meta = fp32.metadata
    split = provenance_split(located(meta.training.data, Path(args.model).parent), None, meta.preprocessing)
    calibration = training_sample(split, meta.preprocessing, args.calibration_images)
    print(f"# {args.model}; CPU {cpu_name()} ({cpu_class()}); {args.calibration_images} calibration images; "
          f"check on {split.validation.n_classes} validation classes")
    print("| format | calibration | kept in FP32 | bias correction | median cosine | 1st percentile | NCM agreement | "
          "passes | INT8 ms | FP32 ms | speed |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for fmt, method, keep, bc in ROWS:
            out = Path(tmp) / "model.int8.onnx"
            quantize_int8(args.model, out, calibration, method=method, fmt=fmt, keep_float=keep, bias_correction=bc)
            int8 = Backbone(out, device="cpu", batch_size=256, allow_inexact=True)
            r = compare_int8(fp32, int8, split.validation.images, split.validation.labels)
            speed = measure_int8_speed(Path(args.model), out)
            exact = cpu_class() in int8.metadata.extra["quantization"]["exact_on"]
            print(f"| {fmt}{'' if exact else ' (saturates here)'} | {method} | {', '.join(keep) or '-'} | "
                  f"{'yes' if bc else 'no'} | {r.median_cosine:.4f} | {r.low_cosine:.4f} | "
                  f"{100 * (r.ncm_agreement or 0):.1f}% | {'yes' if not r.problems() else 'no'} | "
                  f"{speed.int8_ms:.2f} | {speed.fp32_ms:.2f} | {speed.speedup:.2f}x |", flush=True)


if __name__ == "__main__":
    main()
