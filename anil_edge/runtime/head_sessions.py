"""Running the exported head graphs (``model.head_adapt.onnx``, ``model.head_classify.onnx``)
with onnxruntime: the same adaptation as :mod:`.episodes`, as every other binding runs it.
``FewShotClassifier(..., engine="onnx")`` uses this; the numpy engine stays the reference."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np

from ..errors import InputError, ModelError, first_line, require
from .documents import parse_json
from .export_files import ADAPT_INPUTS, ADAPT_OUTPUTS, CLASSIFY_INPUTS, SUFFIXES, beside, family_base
from .file_set import complete_interrupted


def check_against_sidecar(sidecar: Path, hashes: dict[str, str]) -> None:
    """Each file named in ``hashes`` (file name → SHA-256) must be the file ``sidecar`` lists
    under that name; no sidecar (a hand-assembled folder) checks nothing."""
    if not sidecar.is_file():
        return
    try:
        listed = {entry["path"]: entry["sha256"] for entry in parse_json(sidecar.read_bytes())["files"].values()}
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ModelError(f"{sidecar}: not a readable anil-edge sidecar ({type(exc).__name__}: {exc})") from None
    wrong = [f"{name} (SHA-256 {digest[:12]}…, model.json lists {listed[name][:12]}…)"
             for name, digest in hashes.items() if name in listed and listed[name] != digest]
    if wrong:
        raise ModelError(f"files beside {sidecar.name} are not the ones it lists: {'; '.join(wrong)}; a file of "
                         "another export? export the model again")


class HeadGraphs:
    """The two head graphs exported beside a backbone (FP32 or INT8), as onnxruntime sessions."""

    def __init__(self, backbone_path: str | os.PathLike[str], backbone_sha256: str | None = None) -> None:
        """``backbone_sha256``: the backbone file's SHA-256; with the export's ``model.json``
        beside it, the backbone and both graphs must be the files it lists (one artefact)."""
        ort = require("onnxruntime", "cpu")
        base = family_base(backbone_path)
        complete_interrupted(base.parent)
        self.paths = (beside(base, SUFFIXES["head_adapt"]), beside(base, SUFFIXES["head_classify"]))
        missing = [str(p) for p in self.paths if not p.is_file()]
        if missing:
            raise ModelError(f"engine='onnx' needs the head graphs that anil-edge export writes beside the model; "
                             f"not found: {missing}")
        graphs = [p.read_bytes() for p in self.paths]
        hashes = {p.name: hashlib.sha256(b).hexdigest() for p, b in zip(self.paths, graphs)}
        if backbone_sha256 is not None:
            hashes[Path(backbone_path).name] = backbone_sha256
        check_against_sidecar(beside(base, SUFFIXES["sidecar"]), hashes)
        self._adapt, self._classify = _sessions(ort, graphs, self.paths)

    @classmethod
    def from_files(cls, adapt: str | os.PathLike[str], classify: str | os.PathLike[str]) -> HeadGraphs:
        """The two graphs at these paths, without a backbone or sidecar (the export checks its
        staged graphs with this before they are committed)."""
        graphs = cls.__new__(cls)
        graphs.paths = (Path(adapt), Path(classify))
        graphs._adapt, graphs._classify = _sessions(require("onnxruntime", "cpu"),
                                                    [p.read_bytes() for p in graphs.paths], graphs.paths)
        return graphs

    def adapt(self, E: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``W`` (C, D), ``b`` (C,) and the class means (C, D) for support embeddings (N, D), labels (N,).

        The graph's contract (model.json's "labels"): labels are class indices 0..C-1 with
        C = max(labels) + 1 and every class present; anything else is refused here, as the numpy
        engine refuses it, instead of the NaN (a missing class) or wrapped index (-1) the graph
        would compute."""
        y = np.asarray(y)
        if y.ndim != 1 or y.dtype.kind not in "iu" or y.shape[0] != np.shape(E)[0] or y.size == 0:
            raise InputError(f"labels must be N >= 1 class indices (N,) for embeddings (N, D), found labels "
                             f"{y.dtype} {y.shape} for embeddings {np.shape(E)}")
        present = np.unique(y)
        if present[0] < 0 or present.size != int(present[-1]) + 1:
            raise InputError(f"labels must be the class indices 0..C-1 with every class present, found "
                             f"{present[:10].tolist()}{' …' if present.size > 10 else ''}")
        W, b, means = self._run(self._adapt, dict(zip(ADAPT_INPUTS, (E, y.astype(np.int64)))), ADAPT_OUTPUTS)
        return W, b, means

    def classify(self, Q: np.ndarray, W: np.ndarray, b: np.ndarray, means: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Probabilities (Q, C) and open-set scores (Q,)."""
        _, P, scores = self._run(self._classify, dict(zip(CLASSIFY_INPUTS, (Q, W, b, means))))
        return P, scores

    def _run(self, session, feeds: dict[str, np.ndarray], outputs=None) -> list[np.ndarray]:
        """The session's ``outputs`` (None: all); onnxruntime's own failures (shapes, types) as a ModelError."""
        try:
            return session.run(None if outputs is None else list(outputs), feeds)
        except Exception as exc:  # onnxruntime's exception types (InvalidArgument, Fail, ...)
            shapes = {k: f"{np.asarray(v).dtype} {np.shape(v)}" for k, v in feeds.items()}
            first = first_line(exc)
            raise ModelError(f"the head graph refused its inputs {shapes}: {first}") from None


def _sessions(ort, graphs: list[bytes], paths: tuple[Path, ...]) -> tuple:
    try:
        return tuple(ort.InferenceSession(b, providers=["CPUExecutionProvider"]) for b in graphs)
    except Exception as exc:  # onnxruntime's own error types
        raise ModelError(f"cannot load the head graphs {[str(p) for p in paths]}: {exc}") from None
