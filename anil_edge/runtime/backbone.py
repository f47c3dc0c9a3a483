"""The exported backbone as an onnxruntime session: images in, embeddings (N, D) out."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from ..cpu_features import cpu_class
from ..errors import InputError, ModelError, first_line, raise_if_problems, require
from .file_kind import ONNX, hint
from .file_set import complete_interrupted
from .int8_variants import BackboneChoice, choose_backbone, int8_quantization
from .metadata import ModelMetadata
from .metadata_props import VERSION_KEY, metadata_from_props
from .model_hash import model_sha256
from .preprocess import to_input

DEVICES = ("auto", "cpu", "cuda")


class Backbone:
    """An anil-edge ONNX backbone, configured entirely by its own metadata.

    Args:
        path: the ``.onnx`` file written by ``anil-edge export``.
        device: ``"auto"`` uses CUDA when the installed onnxruntime offers it, else the CPU;
            ``"cpu"`` or ``"cuda"`` force one (``"cuda"`` raises if it is not available).
        intra_op_threads: threads inside one operator; 0 lets onnxruntime decide.
        inter_op_threads: threads across operators; 0 lets onnxruntime decide.
        batch_size: large inputs are embedded in chunks of this many images.
        providers: onnxruntime execution providers, in order of preference, as onnxruntime takes
            them (names, or ``(name, options)`` pairs): e.g. ``["CoreMLExecutionProvider",
            "CPUExecutionProvider"]``, NNAPI, OpenVINO, TensorRT, XNNPACK. Overrides ``device``;
            each must be one the installed onnxruntime offers.
        session_options: an ``onnxruntime.SessionOptions`` to tune the session (graph
            optimisation level, memory patterns, ...); its thread counts win over the arguments.
        precision: which file of the export to run (:mod:`.int8_variants`): ``"file"`` the one
            named; ``"auto"`` its INT8 model (``model.int8.onnx``) where that is exact and faster
            on this CPU, else the FP32 model; ``"fp32"`` or ``"int8"`` that one. An INT8 model
            that is not exact on this CPU is refused. ``choice`` says what was loaded and why.
        allow_inexact: load an INT8 file even where its kernels can saturate (to measure it).

    Raises:
        ModelError: the file is missing, not a loadable ONNX model, or lacks valid metadata.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        device: str = "auto",
        intra_op_threads: int = 0,
        inter_op_threads: int = 0,
        batch_size: int = 64,
        providers: Sequence[str | tuple[str, dict[str, Any]]] | None = None,
        session_options: Any = None,
        precision: str = "file",
        allow_inexact: bool = False,
    ) -> None:
        ort = require("onnxruntime", "cpu")  # anil-edge[cpu] or anil-edge[gpu] provides it
        if device not in DEVICES:
            raise InputError(f"device must be one of {DEVICES}, found {device!r}")
        problems = [f"{name} must be an integer >= {low}, found {value!r:.40}"
                    for name, value, low in (("batch_size", batch_size, 1), ("intra_op_threads", intra_op_threads, 0),
                                             ("inter_op_threads", inter_op_threads, 0))
                    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low]
        raise_if_problems(problems, InputError, "invalid Backbone options")
        self.batch_size = batch_size
        options = _session_options(ort, session_options, intra_op_threads, inter_op_threads)
        self.providers = _providers(ort, device) if providers is None else _checked_providers(ort, providers)
        opened: dict[Path, tuple[bytes, Any, ModelMetadata]] = {}

        def quantization(file: Path) -> dict[str, Any] | None:
            if file not in opened:
                opened[file] = _open(ort, file, options, self.providers)
            return int8_quantization(opened[file][2])

        if allow_inexact:
            named = "fp32" if quantization(Path(path)) is None else "int8"
            self.choice = BackboneChoice(Path(path), named, cpu_class(), ("the file named (allow_inexact)",))
        else:
            self.choice = choose_backbone(path, precision, cpu_class(), quantization)
        self.path = self.choice.path
        if self.path not in opened:
            opened[self.path] = _open(ort, self.path, options, self.providers)
        model_bytes, self._session, self.metadata = opened[self.path]
        self._input_name = _check_io(self._session, self.metadata, self.path)
        # sha256: the graph and weights this session runs (binds enrollment states); file_sha256: the file
        self.sha256, self.file_sha256 = model_sha256(model_bytes)

    @property
    def embedding_dim(self) -> int:
        """D, the length of one embedding."""
        return self.metadata.embedding_dim

    def preprocess(self, images: Any) -> np.ndarray:
        """Images (see :mod:`anil_edge.runtime.preprocess`) to the model input (N, C, H, W)."""
        return to_input(images, self.metadata.preprocessing)

    def embed(self, images: Any) -> np.ndarray:
        """Embeddings of ``images``: float32 (N, D), computed ``batch_size`` images at a time."""
        return self.embed_input(self.preprocess(images))

    def embed_input(self, x: np.ndarray) -> np.ndarray:
        """Embeddings of an already preprocessed batch (N, C, H, W): float32 (N, D)."""
        p = self.metadata.preprocessing
        expected = (p.channels, *p.input_size)
        if not isinstance(x, np.ndarray) or x.dtype != np.float32 or x.ndim != 4 or x.shape[1:] != expected or not len(x):
            found = f"{x.dtype} {x.shape}" if isinstance(x, np.ndarray) else type(x).__name__
            raise InputError(f"expected a preprocessed float32 batch (N >= 1, {', '.join(map(str, expected))}), found {found}")
        chunks = [
            self._session.run(None, {self._input_name: x[i : i + self.batch_size]})[0]
            for i in range(0, x.shape[0], self.batch_size)
        ]
        out = np.concatenate(chunks).reshape(x.shape[0], -1).astype(np.float32, copy=False)
        if out.shape[1] != self.embedding_dim or not np.isfinite(out).all():
            raise ModelError(
                f"{self.path} produced embeddings of shape {out.shape} (finite: {bool(np.isfinite(out).all())}); "
                f"expected finite embeddings of shape ({x.shape[0]}, {self.embedding_dim})"
            )
        return out

    def __repr__(self) -> str:
        p = self.metadata.preprocessing
        return (
            f"Backbone({str(self.path)!r}, input={p.channels}x{p.input_size[0]}x{p.input_size[1]}, "
            f"D={self.embedding_dim}, providers={self.providers})"
        )


def _open(ort, path: Path, options: Any, providers: list[Any]) -> tuple[bytes, Any, ModelMetadata]:
    """The bytes, onnxruntime session and metadata of the model file at ``path``."""
    model_bytes = _read(path)
    try:
        session = ort.InferenceSession(model_bytes, sess_options=options, providers=providers)
    except Exception as exc:  # onnxruntime raises its own types (InvalidProtobuf, Fail, ...)
        raise ModelError(f"cannot load {path} as an ONNX model: {first_line(exc, 300)}{hint(path, ONNX)}") from None
    props = dict(session.get_modelmeta().custom_metadata_map)
    return model_bytes, session, metadata_from_props(props, source=str(path))


def read_metadata(path: str | os.PathLike[str]) -> ModelMetadata:
    """The anil-edge metadata of any exported model file (also ``.pixels.onnx``, INT8 and ``.ort``)."""
    return read_model_file(path).metadata


class ModelFile(NamedTuple):
    """What an exported model file says about itself."""

    metadata: ModelMetadata
    inputs: list[tuple[str, str, list[Any]]]  # (name, element type, shape) of each input
    format_version: str  # the file's own anil-edge metadata format ("1", "2", "3")


def read_model_file(path: str | os.PathLike[str]) -> ModelFile:
    """The metadata, real inputs and metadata format of any exported model file (also ``.ort``)."""
    ort = require("onnxruntime", "cpu")
    data = _read(Path(path))
    try:
        session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime's own error types
        raise ModelError(f"cannot load {path} as an ONNX model: {first_line(exc, 300)}") from None
    inputs = [(i.name, i.type.removeprefix("tensor(").removesuffix(")"), list(i.shape)) for i in session.get_inputs()]
    props = dict(session.get_modelmeta().custom_metadata_map)
    return ModelFile(metadata_from_props(props, source=str(path)), inputs, props.get(VERSION_KEY, "?"))


def _read(path: Path) -> bytes:
    complete_interrupted(path.parent)  # an export killed mid-commit: finish it before reading
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise ModelError(f"model file not found: {path}") from None
    except OSError as exc:
        raise ModelError(f"cannot read model file {path}: {exc}") from None


def _session_options(ort, given: Any, intra: int, inter: int):
    if given is not None:
        if not isinstance(given, ort.SessionOptions):
            raise InputError(f"session_options must be an onnxruntime.SessionOptions, found {type(given).__name__}")
        return given
    options = ort.SessionOptions()
    options.intra_op_num_threads = intra
    options.inter_op_num_threads = inter
    options.log_severity_level = 3
    return options


def _checked_providers(ort, providers: Sequence[Any]) -> list[Any]:
    """``providers`` as onnxruntime takes them, after checking that each is available here."""
    if isinstance(providers, str) or not isinstance(providers, Sequence) or not providers:
        raise InputError(f"providers must be a non-empty list of execution provider names, found {providers!r:.60}")
    available = ort.get_available_providers()
    names = [p[0] if isinstance(p, tuple) and len(p) == 2 and isinstance(p[1], dict) else p for p in providers]
    unknown = [n for n in names if not isinstance(n, str) or n not in available]
    if unknown:
        raise InputError(f"execution provider(s) {unknown} are not available in this onnxruntime "
                         f"(it offers {available}); install the onnxruntime build that has them")
    return list(providers)


def _providers(ort, device: str) -> list[str]:
    available = ort.get_available_providers()
    cuda = "CUDAExecutionProvider" in available
    if device == "cuda" and not cuda:
        raise ModelError(
            f"device='cuda' was asked for but this onnxruntime offers only {available}; "
            "install anil-edge[gpu] (onnxruntime-gpu) on a machine with CUDA"
        )
    if cuda and device in ("auto", "cuda"):
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    return ["CPUExecutionProvider"]


def _check_io(session, meta: ModelMetadata, path: Path) -> str:
    """The input name, after checking the graph's input/output shapes against the metadata."""
    inputs, outputs = session.get_inputs(), session.get_outputs()
    p = meta.preprocessing
    expected_in = [p.channels, *p.input_size]
    problems = []
    if len(inputs) == 1 and inputs[0].type == "tensor(uint8)":
        raise ModelError(f"{path} takes raw uint8 pixels (the export's model for apps in other languages); "
                         "the Python runtime reads the float model beside it (model.onnx)")
    if len(inputs) != 1 or len(outputs) < 1:
        problems.append(f"expected 1 input and an embedding output, found {len(inputs)} input(s), {len(outputs)} output(s)")
    else:
        shape = list(inputs[0].shape)
        if len(shape) != 4 or any(isinstance(s, int) and s != e for s, e in zip(shape[1:], expected_in)):
            problems.append(f"input shape {shape} does not match the metadata's (N, {', '.join(map(str, expected_in))})")
        out_dim = outputs[0].shape[-1] if outputs[0].shape else None
        if isinstance(out_dim, int) and out_dim != meta.embedding_dim:
            problems.append(f"output is {out_dim}-d but the metadata says embedding_dim={meta.embedding_dim}")
    if problems:
        raise ModelError(f"{path} does not match its own metadata: " + "; ".join(problems))
    return inputs[0].name
