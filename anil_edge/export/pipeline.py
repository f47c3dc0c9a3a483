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
from typing import cast

import numpy as np

from ..atomic import folder_lock, refuse_output_over_input, remove_stale_folders
from ..data.image_set import ImageSet
from ..errors import CheckpointError, InputError, ModelError, require
from ..runtime.adaptation import HeadCalibration
from ..runtime.backbone import Backbone, read_metadata
from ..runtime.export_files import SUFFIXES, beside, output_suffixes
from ..runtime.file_set import STAGING_PREFIX, commit_files, complete_interrupted
from ..runtime.metadata import ModelMetadata
from ..runtime.open_set import OpenSetCalibration
from ..runtime.whitening import WhiteningCalibration
from .deployment_files import write_deployment_files, write_sidecar
from .head_calibration import calibrate_head
from .int8_check import NCM_AGREEMENT, Int8QualityError, Int8Report
from .int8_profile import record_int8_profile
from .mobile import convert_to_ort, fix_batch
from .onnx_export import OPSET, build_onnx, check_opset, rewrite_metadata, set_metadata, write_onnx
from .open_set_calibration import add_calibration, calibrate_open_set
from .quantize import DEFAULT_FORMAT
from .trained import TrainedModel, load_trained
from .validate import ValidationReport, validate_export
from .whitening import calibrate_whitening

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
    int8_quantization: dict | None = None  # the INT8 model's extra.quantization, with its timing on this CPU
    whitening: WhiteningCalibration | None = None  # whether and why the backbone ends with the whitening


@dataclass(frozen=True)
class ExportOptions:
    """What an export writes beside ``model.onnx``, and how; checked when built (contradicting
    options are refused before any work)."""

    int8: bool = False  # also model.int8.onnx (and its pixel model): needs calibration images
    torchscript: bool = False  # also model.ts (traced)
    opset: int = OPSET  # ONNX opset of the backbone
    calibration_method: str = "minmax"  # INT8 activation ranges: quantize.METHODS
    bias_correction: bool = True  # INT8: each convolution's bias corrected for its weights' rounding
    int8_format: str = DEFAULT_FORMAT  # quantize.FORMATS, or "auto"
    pixel_input: bool = True  # model.pixels.onnx: the backbone taking uint8 (N, H, W, C) pixels
    fixed_batch: int | None = None  # a static batch for the pixel model (NNAPI, Core ML)
    ort_format: bool = False  # .ort files of the pixel model and head graphs (mobile.convert_to_ort)
    calibrate_head: bool = True  # choose the head rule on the validation classes (head_calibration)
    whiten: bool = True  # end the backbone with within-class whitening where it measures better (whitening)

    def __post_init__(self) -> None:
        check_opset(self.opset)
        fb = self.fixed_batch
        if fb is not None and (isinstance(fb, bool) or not isinstance(fb, int) or fb < 1):
            raise InputError(f"the fixed batch size must be an integer >= 1, found {fb!r}")
        if fb is not None and not self.pixel_input:
            raise InputError("--fixed-batch fixes the pixel model's batch, which --no-pixel-input turns off: drop one "
                             "of them")


@dataclass(frozen=True)
class ExportImages:
    """The images an export checks and calibrates with (each optional)."""

    real: np.ndarray | None = None  # preprocessed (N, C, H, W): parity checks beside random images
    calibration: np.ndarray | None = None  # preprocessed training images: INT8 calibration
    validation: ImageSet | None = None  # classes never trained on: head rule, open-set thresholds, INT8 check
    training: ImageSet | None = None  # whole training classes: the whitening's within-class scatter (whitening.fit_sample)


@dataclass(frozen=True)
class _Models:
    """The staged backbones of one export, validated."""

    meta: ModelMetadata  # the FP32 model's metadata (head rule, open-set thresholds)
    report: ValidationReport  # every FP32 comparison that was run
    int8: bool  # an INT8 model is staged and checked
    int8_check: Int8Report | None  # its check, when one was made
    int8_refused: str | None  # why the INT8 model asked for was not shipped
    int8_quantization: dict | None = None  # the INT8 model's extra.quantization, with its timing on this CPU


def check_export_target(out: str | os.PathLike[str], checkpoint: str | os.PathLike[str] | None) -> Path:
    """``out`` as a Path after the checks that need no model: suffix, folder, and that no output
    (``.onnx``, ``.int8.onnx``, ``.ts``, …) would replace the checkpoint it is made from."""
    if checkpoint is not None and not Path(checkpoint).is_file():
        raise CheckpointError(f"checkpoint not found: {checkpoint}" + (" (a folder)" if Path(checkpoint).is_dir() else ""))
    out = Path(out)
    if out.suffix.lower() != ".onnx":
        raise ModelError(f"the output must be an .onnx path, found {out}")
    if not out.parent.is_dir():
        raise ModelError(f"cannot write {out}: folder {out.parent} does not exist")
    for output in (out, *(beside(out, suffix) for suffix in OUTPUT_SUFFIXES)):
        refuse_output_over_input(output, [checkpoint], what="export output")
    return out


def export_checkpoint(checkpoint: str | os.PathLike[str] | TrainedModel, out: str | os.PathLike[str],
                      options: ExportOptions = ExportOptions(), images: ExportImages = ExportImages()) -> ExportResult:
    """Export a training checkpoint (a path, or one already read by ``load_trained``) to ``out``
    (``.onnx``) and, as ``options`` ask, ``.int8.onnx``, ``.ts``, the pixel models and ``.ort``
    files. Beside ``out`` it always writes the head graphs (``.head_adapt.onnx``,
    ``.head_classify.onnx``), the preprocessing graph and the sidecar (``.json``) of
    :mod:`.deployment_files`, checked against the numpy runtime. With ``images.validation`` the
    head rule (:mod:`.head_calibration`) and the open-set thresholds
    (:mod:`.open_set_calibration`) are calibrated on it, and the INT8 model checked on it.
    """
    out = check_export_target(out, None if isinstance(checkpoint, TrainedModel) else checkpoint)
    if options.int8 and images.calibration is None:
        raise ModelError("INT8 export needs calibration images")
    trained = checkpoint if isinstance(checkpoint, TrainedModel) else load_trained(checkpoint)
    with _staging(out.parent) as stage:
        models = _stage_models(trained, stage, options, images)
        deployment = write_deployment_files(stage["onnx"], lambda suffix: beside(stage["onnx"], suffix),
                                            pixels=options.pixel_input, int8_path=stage["int8"] if models.int8 else None)
        if options.fixed_batch is not None:
            for kind in ("backbone_pixels", "backbone_int8_pixels"):
                if kind in deployment:
                    fix_batch(deployment[kind], options.fixed_batch)
        final = _commit(out, stage, models, deployment, options)
    target = _targets(out)
    return ExportResult(out, target["int8"] if models.int8 else None,
                        target["torchscript"] if options.torchscript else None, models.report, models.meta.open_set, final,
                        models.int8_check, models.meta.head_calibration, models.int8_refused, models.int8_quantization,
                        models.meta.whitening)


def _stage_models(trained: TrainedModel, stage: dict[str, Path], options: ExportOptions,
                  images: ExportImages) -> _Models:
    """The FP32 ONNX model (calibrated on the validation classes), TorchScript and INT8 as asked,
    staged and validated; an INT8 model that fails its check is dropped, and the reason kept."""
    backbone, whitening = trained.model.backbone, None
    meta = _write_onnx(backbone, trained, stage["onnx"], options)
    if options.whiten and images.training is not None and images.validation is not None \
            and trained.adaptation.head_init != "learned":  # a learned head knows only the plain embedding
        backbone, meta, whitening = _whiten(backbone, trained, stage, options, images)
    if images.validation is not None:
        meta = _calibrate(stage["onnx"], images.validation, options.calibrate_head)
    if options.torchscript:
        from .torchscript_export import export_torchscript

        export_torchscript(backbone, stage["torchscript"], meta)
    report = validate_export(backbone, onnx_path=stage["onnx"],
                             torchscript_path=stage["torchscript"] if options.torchscript else None,
                             real_images=images.real)
    report.raise_if_failed()
    if not options.int8:
        return _Models(meta, report, False, None, None)
    try:
        check = (_quantize_checked(stage["onnx"], stage["int8"], options, images) if whitening is None
                 else _quantize_whitened(stage, whitening, options, images))
    except Int8QualityError as exc:  # the FP32 files are still shipped; the caller says what happened
        return _Models(meta, report, False, None, str(exc))
    if images.validation is not None:  # INT8 embeddings differ slightly: thresholds of its own
        add_calibration(stage["int8"], images.validation)
    return _Models(meta, report, True, check, None, record_int8_profile(stage["onnx"], stage["int8"]))


def _commit(out: Path, stage: dict[str, Path], models: _Models, deployment: dict[str, Path],
            options: ExportOptions) -> dict[str, Path]:
    """Write the sidecar (and .ort files), then commit every staged file as one set, removing
    what an earlier export wrote and this one did not; the final path of each deployment file."""
    final = {kind: _final_path(out, staged) for kind, staged in deployment.items()}
    target = _targets(out)
    sidecar = beside(stage["onnx"], "json")
    backbones = {"backbone": stage["onnx"], **({"backbone_int8": stage["int8"]} if models.int8 else {})}
    names = {"backbone": out.name, **({"backbone_int8": target["int8"].name} if models.int8 else {}),
             **{kind: path.name for kind, path in final.items()}}
    write_sidecar(sidecar, models.meta, {**backbones, **deployment}, names,
                  int8_meta=read_metadata(stage["int8"]) if models.int8 else None, pixel_batch=options.fixed_batch)
    ort_files = convert_to_ort(list(deployment.values()), stage["onnx"].parent / "ort") if options.ort_format else []
    final.update({f"ort {staged.name}": _final_path(out, staged) for staged in ort_files})
    final["sidecar"] = beside(out, "json")
    moves = [(stage["onnx"], out)]
    moves += [(stage["int8"], target["int8"])] if models.int8 else []
    moves += [(stage["torchscript"], target["torchscript"])] if options.torchscript else []
    moves += [(deployment[kind], final[kind]) for kind in deployment]
    moves += [(staged, final[f"ort {staged.name}"]) for staged in ort_files] + [(sidecar, final["sidecar"])]
    written = {target for _, target in moves}
    stale = [path for path in (beside(out, suffix) for suffix in OUTPUT_SUFFIXES)
             if path not in written and path.is_file()]  # an earlier export's INT8, pixel, .ort files
    commit_files(out.parent, stage["onnx"].parent, moves, stale)
    return final


def _write_onnx(backbone, trained: TrainedModel, path: Path, options: ExportOptions,
                whitening: WhiteningCalibration | None = None) -> ModelMetadata:
    """``backbone`` as ONNX at ``path`` (a staged model.onnx), with ``whitening`` recorded; its metadata."""
    model, meta = build_onnx(backbone, preprocessing=trained.preprocessing, adaptation=trained.adaptation,
                             learned_head=trained.learned_head,  # sources relative to the output folder, the stage's parent
                             training=trained.training(path.parent.parent),
                             opset=options.opset, extra={"checkpoint_iteration": trained.iteration,
                                                         "opset": options.opset, **_backbone_record(trained.config)})
    if whitening is not None:
        meta = replace(meta, whitening=whitening)
        set_metadata(model, meta)
    write_onnx(model, path)
    return meta


def _whiten(backbone, trained: TrainedModel, stage: dict[str, Path], options: ExportOptions, images: ExportImages):
    """``backbone``, ended with the whitening where it measures better on the validation classes
    (:mod:`.whitening`, embedded through the plain model staged as ``stage["onnx"]``), and that
    model rewritten to match, the calibration in its metadata: (backbone, metadata, the whitening
    shipped or None). A shipped whitening leaves the plain model at ``stage["plain"]`` for INT8."""
    from ..train.backbones import Whitened

    path = stage["onnx"]
    plain = Backbone(path, device="cpu", batch_size=256)
    fit, data = cast(ImageSet, images.training), cast(ImageSet, images.validation)
    found = calibrate_whitening(plain.embed(fit.images), fit.labels, plain.embed(data.images), data)
    if found is None:
        return backbone, plain.metadata, None
    whitening, record = found
    if not record.pays:
        meta = replace(plain.metadata, whitening=record)
        rewrite_metadata(path, meta)
        return backbone, meta, None
    shutil.copyfile(path, stage["plain"])
    backbone = Whitened(backbone, whitening.mean, whitening.matrix, whitening.scale)
    return backbone, _write_onnx(backbone, trained, path, options, record), whitening


def _quantize_whitened(stage: dict[str, Path], whitening, options: ExportOptions, images: ExportImages) -> Int8Report:
    """The INT8 model of a whitened backbone: the plain model quantized and checked as any other
    (cosines where the map has not yet magnified the directions of small within-class variance),
    then ended with the same float map, and its nearest-class-mean agreement with the FP32
    model checked again on the final embeddings; its metadata is the FP32 model's, as INT8."""
    from .int8_check import compare_int8
    from .onnx_export import graph_sha256
    from .whitening import append_to_graph

    report = _quantize_checked(stage["plain"], stage["int8"], options, images)
    model = require("onnx", "train").load(str(stage["int8"]))
    append_to_graph(model, whitening)
    fp32_meta, int8_extra = read_metadata(stage["onnx"]), read_metadata(stage["int8"]).extra
    extra = {**int8_extra, "fp32_backbone_sha256": fp32_meta.backbone_sha256,
             "quantization": {**int8_extra["quantization"], "checked_before": "whitening"}}
    set_metadata(model, replace(fp32_meta, backbone_sha256=graph_sha256(model), extra=extra))
    write_onnx(model, stage["int8"])
    report = replace(report, checked_before_whitening=True)
    if images.validation is None:
        return report
    fp32, int8 = Backbone(stage["onnx"], device="cpu"), Backbone(stage["int8"], device="cpu", allow_inexact=True)
    final = compare_int8(fp32, int8, images.validation.images, images.validation.labels).ncm_agreement
    if final is not None and final < NCM_AGREEMENT:
        raise Int8QualityError(f"the INT8 model is not shipped: after the whitening its nearest-class-mean agreement "
                               f"with FP32 is {100 * final:.1f}% < {100 * NCM_AGREEMENT:g}% ({report.summary()}); try "
                               "another --int8-format, or export with --whitening off")
    return replace(report, ncm_agreement=final)


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


def _quantize_checked(fp32: Path, int8: Path, options: ExportOptions, images: ExportImages) -> Int8Report:
    """Quantize and check: ``options.int8_format``, or with "auto" each of
    :data:`.quantize.AUTO_FORMATS` in turn until one keeps the FP32 embeddings (7-bit weights can
    lose EfficientNet-Lite's depthwise filters; uint8 weights keep them, exactly on every CPU);
    :class:`Int8QualityError` when none does."""
    from .quantize import AUTO_FORMATS, quantize_int8

    calibration = cast(np.ndarray, images.calibration)  # export_checkpoint refused INT8 without it
    tried: list[str] = []
    for candidate in AUTO_FORMATS if options.int8_format == "auto" else (options.int8_format,):
        clipped = quantize_int8(fp32, int8, calibration, method=options.calibration_method, fmt=candidate,
                                bias_correction=options.bias_correction).extra["quantization"]["clipped_biases"]
        try:
            return replace(_check_int8(fp32, int8, images.validation, images.real, calibration), format=candidate,
                           clipped_biases=clipped)
        except Int8QualityError as exc:
            tried.append(f"{candidate}: {exc}")
    raise Int8QualityError(tried[0] if len(tried) == 1 else "no INT8 format keeps the embeddings: " + "; ".join(tried))


def _check_int8(fp32: Path, int8: Path, data: ImageSet | None, real: np.ndarray | None,
                calibration: np.ndarray) -> Int8Report:
    """The INT8 model against FP32 (:mod:`.int8_check`): on labelled classes it never trained on
    when given, else on the real (or calibration) images, cosine only."""
    from ..runtime.backbone import Backbone
    from .int8_check import check_int8

    a, b = Backbone(fp32, device="cpu", batch_size=256), Backbone(int8, device="cpu", batch_size=256, allow_inexact=True)
    if data is not None:
        return check_int8(a, b, data.images, data.labels)
    return check_int8(a, b, real if real is not None else calibration, preprocessed=True)


def _backbone_record(config) -> dict[str, str]:
    """The architecture and pretrained weights, for ``info`` (a weights file by its name only)."""
    record = {"backbone": config.backbone}
    if config.pretrained:
        record["pretrained"] = Path(config.pretrained).name
    return record


def _targets(out: Path) -> dict[str, Path]:
    """Where the backbones staged under :func:`_staging`'s keys go: ``out`` and its companions."""
    return {"onnx": out, "int8": beside(out, SUFFIXES["backbone_int8"]), "torchscript": beside(out, SUFFIXES["torchscript"])}


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
            yield {"onnx": tmp / "model.onnx", "int8": tmp / "model.int8.onnx", "torchscript": tmp / "model.ts",
                   "plain": tmp / "plain.onnx"}  # the last: the model before the whitening, never shipped
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
