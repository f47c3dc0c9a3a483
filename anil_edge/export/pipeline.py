"""Checkpoint -> deployable files, validated before they appear.

Every file is first written in a staging folder beside the output, validated against the PyTorch
model, and only then committed as one set (:mod:`anil_edge.runtime.file_set`): on any error the staged
files are removed, and a crash at any moment leaves the previous export or the new one, complete,
never a mix, a partly written or an unvalidated model.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from ..atomic import folder_lock, refuse_to_overwrite, remove_stale_folders
from ..data.image_set import ImageSet
from ..errors import CheckpointError, InputError, ModelError
from ..runtime.adaptation import HeadCalibration
from ..runtime.backbone import Backbone, read_metadata
from ..runtime.export_files import beside, output_suffixes
from ..runtime.file_set import STAGING_PREFIX, commit_files, complete_interrupted
from ..runtime.metadata import ModelMetadata
from ..runtime.open_set import OpenSetCalibration
from .deployment_files import write_deployment_files, write_sidecar
from .head_calibration import calibrate_head
from .int8_check import Int8QualityError, Int8Report
from .mobile import convert_to_ort, fix_batch
from .onnx_export import OPSET, build_onnx, check_opset, rewrite_metadata, write_onnx
from .open_set_calibration import add_calibration, calibrate_open_set
from .quantize import DEFAULT_FORMAT
from .trained import TrainedModel, load_trained
from .validate import ValidationReport, validate_export

OUTPUT_SUFFIXES = output_suffixes()  # every file an export may write beside model.onnx: model.<suffix>


@dataclass(frozen=True)
class ExportResult:
    onnx: Path  # the FP32 model
    int8: Path | None  # the INT8 (QDQ) model, when asked for
    torchscript: Path | None  # the TorchScript archive, when asked for
    report: ValidationReport  # every FP32 comparison that was run
    open_set: OpenSetCalibration | None = None  # the FP32 model's open-set thresholds, when calibrated
    deployment: dict[str, Path] = field(default_factory=dict)  # head graphs, pixel-input backbones, sidecar
    int8_check: Int8Report | None = None  # the INT8 model against FP32 on real images, when exported
    head_calibration: HeadCalibration | None = None  # how the shipped head rule was chosen, when calibrated
    int8_refused: str | None = None  # why the INT8 model asked for was not shipped (everything else was)


def check_export_target(out: str | os.PathLike[str], checkpoint: str | os.PathLike[str] | None,
                        opset: int = OPSET, *, pixel_input: bool = True, fixed_batch: int | None = None) -> Path:
    """``out`` as a Path after the checks that need no model: opset, options that contradict each
    other, suffix, folder, and that no output (``.onnx``, ``.int8.onnx``, ``.ts``, …) would
    replace the checkpoint it is made from."""
    if checkpoint is not None and not Path(checkpoint).is_file():
        raise CheckpointError(f"checkpoint not found: {checkpoint}" + (" (a folder)" if Path(checkpoint).is_dir() else ""))
    check_opset(opset)
    if fixed_batch is not None and (isinstance(fixed_batch, bool) or not isinstance(fixed_batch, int) or fixed_batch < 1):
        raise InputError(f"the fixed batch size must be an integer >= 1, found {fixed_batch!r}")
    if fixed_batch is not None and not pixel_input:
        raise InputError("--fixed-batch fixes the pixel model's batch, which --no-pixel-input turns off: drop one of them")
    out = Path(out)
    if out.suffix.lower() != ".onnx":
        raise ModelError(f"the output must be an .onnx path, found {out}")
    if not out.parent.is_dir():
        raise ModelError(f"cannot write {out}: folder {out.parent} does not exist")
    for output in (out, *(beside(out, suffix) for suffix in OUTPUT_SUFFIXES)):
        refuse_to_overwrite(output, [checkpoint], what="export output")
    return out


def export_checkpoint(checkpoint: str | os.PathLike[str] | TrainedModel, out: str | os.PathLike[str], *,
                      real_images: np.ndarray | None = None, calibration: np.ndarray | None = None,
                      int8: bool = False, torchscript: bool = False, opset: int = OPSET,
                      calibration_method: str = "minmax", open_set_data: ImageSet | None = None,
                      pixel_input: bool = True, fixed_batch: int | None = None,
                      ort_format: bool = False, int8_format: str = DEFAULT_FORMAT,
                      calibrate_head: bool = True) -> ExportResult:
    """Export a training checkpoint (a path, or one already read by ``load_trained``) to ``out``
    (``.onnx``), ``out`` with ``.int8.onnx`` and ``.ts``.

    Args:
        real_images: preprocessed images (N, C, H, W) for the parity checks beside random ones.
        calibration: preprocessed training images for INT8 calibration (required with ``int8``).
        open_set_data: validation classes (never trained on) to calibrate the head rule on
            (:mod:`.head_calibration`, unless ``calibrate_head`` is False) and the open-set
            rejection thresholds on, through each exported ONNX model (:mod:`.open_set_calibration`),
            and to check the INT8 model against FP32 on (:mod:`.int8_check`; else ``real_images``).
        int8_format: the INT8 activation × weight format (:data:`.quantize.FORMATS`).
        pixel_input: also write ``.pixels.onnx`` (and ``.int8.pixels.onnx``), the backbone taking
            uint8 (N, H, W, C) pixels.
        fixed_batch: give ``.pixels.onnx`` this fixed batch size (static shapes for NNAPI, Core ML).
        ort_format: also write ``.ort`` files of the pixel model and head graphs (:mod:`.mobile`).

    Beside ``out`` it always writes the head graphs (``.head_adapt.onnx``, ``.head_classify.onnx``)
    and the sidecar (``.json``) of :mod:`.deployment_files`, checked against the numpy runtime.
    """
    out = check_export_target(out, None if isinstance(checkpoint, TrainedModel) else checkpoint, opset,
                              pixel_input=pixel_input, fixed_batch=fixed_batch)
    if int8 and calibration is None:
        raise ModelError("INT8 export needs calibration images")
    trained = checkpoint if isinstance(checkpoint, TrainedModel) else load_trained(checkpoint)
    backbone = trained.model.backbone
    targets: dict[str, Path | None] = {"onnx": out, "int8": out.with_suffix(".int8.onnx") if int8 else None,
                                       "torchscript": out.with_suffix(".ts") if torchscript else None}
    with _staging(out.parent) as stage:
        model, meta = build_onnx(backbone, preprocessing=trained.preprocessing, adaptation=trained.adaptation,
                                 learned_head=trained.learned_head, training=trained.training(out.parent), opset=opset,
                                 extra={"checkpoint_iteration": trained.iteration, "opset": opset,
                                        **_backbone_record(trained.config)})
        write_onnx(model, stage["onnx"])
        if open_set_data is not None:
            meta = _calibrate(stage["onnx"], open_set_data, calibrate_head)
        open_set = meta.open_set
        if torchscript:
            from .torchscript_export import export_torchscript

            export_torchscript(backbone, stage["torchscript"], meta)
        report = validate_export(backbone, onnx_path=stage["onnx"],
                                 torchscript_path=stage["torchscript"] if torchscript else None,
                                 real_images=real_images)
        report.raise_if_failed()
        int8_report, int8_refused = None, None
        if calibration is not None and int8:
            try:
                int8_report = _quantize_checked(stage["onnx"], stage["int8"], calibration, calibration_method,
                                                int8_format, open_set_data, real_images)
            except Int8QualityError as exc:  # the FP32 files are still shipped; the caller says what happened
                int8, int8_refused, targets["int8"] = False, str(exc), None
            if int8 and open_set_data is not None:  # INT8 embeddings differ slightly: thresholds of its own
                add_calibration(stage["int8"], open_set_data)
        deployment = write_deployment_files(stage["onnx"], lambda suffix: beside(stage["onnx"], suffix),
                                            pixels=pixel_input,
                                            int8_path=stage["int8"] if int8 else None)
        if fixed_batch is not None:
            for kind in ("backbone_pixels", "backbone_int8_pixels"):
                if kind in deployment:
                    fix_batch(deployment[kind], fixed_batch)
        final = {kind: _final_path(out, staged) for kind, staged in deployment.items()}
        sidecar = beside(stage["onnx"], "json")
        backbones = {"backbone": stage["onnx"], **({"backbone_int8": stage["int8"]} if int8 else {})}
        write_sidecar(sidecar, replace(meta, open_set=open_set), {**backbones, **deployment},
                      {"backbone": out.name, **({"backbone_int8": targets["int8"].name} if targets["int8"] else {}),
                       **{kind: path.name for kind, path in final.items()}},
                      int8_meta=read_metadata(stage["int8"]) if int8 else None, pixel_batch=fixed_batch)
        ort_files = convert_to_ort(list(deployment.values()), stage["onnx"].parent / "ort") if ort_format else []
        final.update({f"ort {staged.name}": _final_path(out, staged) for staged in ort_files})
        final["sidecar"] = beside(out, "json")
        moves = [(stage[key], target) for key, target in targets.items() if target is not None]
        moves += [(deployment[kind], final[kind]) for kind in deployment]
        moves += [(staged, final[f"ort {staged.name}"]) for staged in ort_files] + [(sidecar, final["sidecar"])]
        written = {target for _, target in moves}
        stale = [path for path in (beside(out, suffix) for suffix in OUTPUT_SUFFIXES)
                 if path not in written and path.is_file()]  # an earlier export's INT8, pixel, .ort files
        commit_files(out.parent, stage["onnx"].parent, moves, stale)
    return ExportResult(out, targets["int8"], targets["torchscript"], report, open_set, final, int8_report,
                        meta.head_calibration, int8_refused)


def _calibrate(model_path: Path, data: ImageSet, head: bool) -> ModelMetadata:
    """The FP32 model's head rule (with ``head``) and open-set thresholds, from one embedding of the
    validation classes ``data``, recorded in its metadata in one write; its new metadata."""
    backbone = Backbone(model_path, device="cpu", batch_size=256)
    meta, E = backbone.metadata, backbone.embed(data.images)
    chosen = calibrate_head(E, data, meta.adaptation, meta.learned_head) if head else None
    if chosen is not None:
        meta = replace(meta, adaptation=chosen[0], head_calibration=chosen[1])
    meta = replace(meta, open_set=calibrate_open_set(E, data))
    rewrite_metadata(model_path, meta)
    return meta


def _quantize_checked(fp32: Path, int8: Path, calibration: np.ndarray, method: str, fmt: str,
                      data: ImageSet | None, real: np.ndarray | None) -> Int8Report:
    """Quantize and check: ``fmt``, or with "auto" each of :data:`.quantize.AUTO_FORMATS` in turn
    until one keeps the FP32 embeddings (7-bit weights lose EfficientNet-Lite's depthwise filters;
    uint8 weights keep them, exactly on every CPU); :class:`Int8QualityError` when none does."""
    from .quantize import AUTO_FORMATS, quantize_int8

    tried: list[str] = []
    for candidate in AUTO_FORMATS if fmt == "auto" else (fmt,):
        clipped = quantize_int8(fp32, int8, calibration, method=method, fmt=candidate).extra["quantization"][
            "clipped_biases"]
        try:
            return replace(_check_int8(fp32, int8, data, real, calibration), format=candidate, clipped_biases=clipped)
        except Int8QualityError as exc:
            tried.append(f"{candidate}: {exc}")
    raise Int8QualityError(tried[0] if len(tried) == 1 else "no INT8 format keeps the embeddings: " + "; ".join(tried))


def _check_int8(fp32: Path, int8: Path, data: ImageSet | None, real: np.ndarray | None,
                calibration: np.ndarray) -> Int8Report:
    """The INT8 model against FP32 (:mod:`.int8_check`): on labelled classes it never trained on
    when given, else on the real (or calibration) images, cosine only."""
    from ..runtime.backbone import Backbone
    from .int8_check import check_int8

    a, b = Backbone(fp32, device="cpu", batch_size=256), Backbone(int8, device="cpu", batch_size=256)
    if data is not None:
        return check_int8(a, b, data.images, data.labels)
    return check_int8(a, b, real if real is not None else calibration, preprocessed=True)


def _backbone_record(config) -> dict[str, str]:
    """The architecture and pretrained weights, for ``info`` (a weights file by its name only)."""
    record = {"backbone": config.backbone}
    if config.pretrained:
        record["pretrained"] = Path(config.pretrained).name
    return record


def _final_path(out: Path, staged: Path) -> Path:
    """Where a staged file goes: ``model.<suffix>`` beside ``out`` with the same suffix; other
    names (``required_operators.config``) unchanged, in ``out``'s folder."""
    prefix = "model."
    return beside(out, staged.name[len(prefix):]) if staged.name.startswith(prefix) else out.parent / staged.name


@contextlib.contextmanager
def _staging(folder: Path):
    """Temporary paths in ``folder`` for each output; whatever is left is removed at the end.
    Held under the folder's lock: a second export into the same folder waits for the first to
    commit, so the last one's files (and the model.json that hashes them) are whole."""
    with contextlib.ExitStack() as stack:
        try:
            stack.enter_context(folder_lock(folder))
            complete_interrupted(folder)  # an export killed after its commit point: finish it
            remove_stale_folders(folder, STAGING_PREFIX)  # one killed before: its staging folder goes
            tmp = Path(tempfile.mkdtemp(prefix=f"{STAGING_PREFIX}{os.getpid()}-", dir=folder))
        except OSError as exc:
            raise ModelError(f"cannot write to {folder}: {exc}") from None
        try:
            yield {"onnx": tmp / "model.onnx", "int8": tmp / "model.int8.onnx", "torchscript": tmp / "model.ts"}
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
