"""One-file enrollment state: an ``.npz`` with a JSON header, no pickle, written atomically.

Members of the archive:

- ``header``: UTF-8 JSON as a uint8 array — format name and version, the backbone's hash,
  the embedding dimension, the labels in order and their type, the adaptation settings;
- ``embeddings``: float32 (M, D), every cached support embedding;
- ``class_index``: int32 (M,), the position in ``labels`` of each embedding's class.

The adapted head is not stored: it is a deterministic function of the above and is
recomputed on first use. Loading checks every field and the backbone's hash.
"""

from __future__ import annotations

import io
import json
import os
import zipfile
import zlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..atomic import atomic_write
from ..errors import InputError, StateError, raise_if_problems
from .labels import check_label

if TYPE_CHECKING:
    from .backbone import Backbone
    from .classifier import FewShotClassifier

STATE_FORMAT = "anil-edge-state"
STATE_VERSION = 1
_MEMBERS = ("header", "embeddings", "class_index")


def save_state(path: str | os.PathLike[str], clf: "FewShotClassifier") -> None:
    """Write ``clf``'s labels, cached embeddings and settings to ``path`` atomically."""
    embeddings, class_index = clf.support_set()
    header = {
        "format": STATE_FORMAT,
        "version": STATE_VERSION,
        "backbone_sha256": clf.backbone.metadata.backbone_sha256,
        "embedding_dim": clf.backbone.embedding_dim,
        "labels": clf.labels,
        "label_type": type(clf.labels[0]).__name__ if clf.labels else "str",
        "settings": {
            "lr": clf.settings.lr,
            "steps": clf.settings.steps,
            "head_init": clf.settings.head_init,
            "threshold": clf.settings.threshold,
        },
    }
    buffer = io.BytesIO()
    np.savez(
        buffer,
        header=np.frombuffer(json.dumps(header).encode("utf-8"), dtype=np.uint8),
        embeddings=embeddings,
        class_index=class_index,
    )
    try:
        with atomic_write(path) as handle:
            handle.write(buffer.getbuffer())
    except OSError as exc:
        raise StateError(f"cannot write the state file {path}: {exc}") from None


def load_state(path: str | os.PathLike[str], backbone: "Backbone", cls: type["FewShotClassifier"]) -> "FewShotClassifier":
    """Read a state written by :func:`save_state` for ``backbone``; StateError on any problem."""
    header, embeddings, class_index = _read(Path(path))
    _check(header, embeddings, class_index, backbone, path)
    s = header["settings"]
    try:
        clf = cls(backbone, threshold=s["threshold"], lr=s["lr"], steps=s["steps"], head_init=s["head_init"])
    except (InputError, TypeError) as exc:
        raise StateError(f"{path} holds invalid adaptation settings: {exc}") from None
    for k, label in enumerate(header["labels"]):
        clf.enroll_embeddings(label, embeddings[class_index == k])
    return clf


def _read(path: Path) -> tuple[dict[str, Any], np.ndarray, np.ndarray]:
    if not path.is_file():
        raise StateError(f"state file not found: {path}")
    try:
        with np.load(path, allow_pickle=False) as archive:
            missing = [m for m in _MEMBERS if m not in archive.files]
            if missing:
                raise StateError(f"{path} is not an anil-edge state: missing {missing}, found {archive.files}")
            header = json.loads(archive["header"].tobytes().decode("utf-8"))
            return header, archive["embeddings"], archive["class_index"]
    except StateError:
        raise
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile, zlib.error, UnicodeDecodeError) as exc:
        raise StateError(
            f"{path} is truncated or corrupted ({type(exc).__name__}: {exc}); "
            "expected an anil-edge state file (.npz) written by FewShotClassifier.save"
        ) from None


def _check(header: Any, embeddings: np.ndarray, class_index: np.ndarray, backbone: "Backbone", path) -> None:
    if not isinstance(header, dict) or header.get("format") != STATE_FORMAT:
        raise StateError(f"{path} is not an anil-edge state (format {header.get('format') if isinstance(header, dict) else None!r})")
    if header.get("version") != STATE_VERSION:
        raise StateError(f"{path} has state version {header.get('version')!r}; this runtime reads version {STATE_VERSION}")
    want = backbone.metadata.backbone_sha256
    if header.get("backbone_sha256") != want:
        raise StateError(
            f"{path} was enrolled with backbone {str(header.get('backbone_sha256'))[:12]}…, but this model's backbone "
            f"is {want[:12]}… ({backbone.path}); its embeddings do not apply: enroll the classes again with this model"
        )
    problems = []
    labels = header.get("labels")
    D = backbone.embedding_dim
    if not isinstance(labels, list) or len(set(map(repr, labels))) != len(labels):
        problems.append(f"labels must be a list of distinct labels, found {labels!r:.80}")
        labels = []
    else:
        try:
            for label in labels:
                check_label(label, labels[:1])
        except Exception as exc:
            problems.append(str(exc))
    if embeddings.dtype != np.float32 or embeddings.ndim != 2 or embeddings.shape[1] != D:
        problems.append(f"embeddings must be float32 (M, {D}), found {embeddings.dtype} {embeddings.shape}")
    elif not np.isfinite(embeddings).all():
        problems.append("embeddings hold NaN or infinite values")
    if class_index.dtype.kind not in "iu" or class_index.shape != embeddings.shape[:1]:
        problems.append(f"class_index must be integers of shape ({embeddings.shape[0]},), found {class_index.dtype} {class_index.shape}")
    elif labels and sorted(set(class_index.tolist())) != list(range(len(labels))):
        problems.append(f"every one of the {len(labels)} labels needs at least one embedding and no index may exceed them")
    settings = header.get("settings")
    if not isinstance(settings, dict) or set(settings) != {"lr", "steps", "head_init", "threshold"}:
        problems.append(f"settings must hold lr, steps, head_init and threshold, found {settings!r:.80}")
    raise_if_problems(problems, StateError, f"{path} is not a valid anil-edge state")
