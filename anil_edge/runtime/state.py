"""One-file enrollment state: an ``.npz`` with a JSON header, no pickle, written atomically.

:class:`EnrollmentState` is plain data: :class:`~anil_edge.runtime.classifier.FewShotClassifier`
builds one (``to_state``) and is rebuilt from one (``from_state``). Members of the archive:

- ``header``: UTF-8 JSON as a uint8 array — format name and version, the backbone's hash,
  the embedding dimension, the labels in order and their type, the adaptation settings and
  the unknown-threshold;
- ``embeddings``: float32 (M, D), every cached support embedding;
- ``class_index``: int32 (M,), the position in ``labels`` of each embedding's class.

The header is a :class:`StateHeader`, written and read by :mod:`.documents`. The adapted head
is not stored: it is a deterministic function of the above. Version 1 headers (anil-edge 0.1:
``settings.{lr, steps, head_init, threshold}``) are rewritten as version 2, and version 2
headers (no head scale or pull) as version 3, first (:mod:`.legacy`).
"""

from __future__ import annotations

import io
import json
import os
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar, cast

import numpy as np

from ..atomic import exclusive_lock, write_atomically
from ..errors import InputError, StateError, raise_if_problems
from .adaptation import Adaptation
from .decision import reject_problems, threshold_problems
from .documents import from_document, to_document
from .file_kind import STATE, file_kind
from .labels import Label, check_label
from .legacy import upgrade_adaptation, upgrade_state_header
from .validation import embedding_range_problems

T = TypeVar("T")

MAX_STATE_BYTES = 2**31  # 2 GiB uncompressed: about 8 million 64-d embeddings
MAX_HEADER_BYTES = 64 * 2**20  # labels and settings
STATE_FORMAT = "anil-edge-state"
STATE_VERSION = 3
READABLE_STATE_VERSIONS = (1, 2, 3)
_MEMBERS = ("header", "embeddings", "class_index")


@dataclass(frozen=True, eq=False)
class EnrollmentState:
    """Everything a classifier's enrollment consists of."""

    backbone_sha256: str  # the backbone the embeddings were computed with
    labels: tuple[Label, ...]  # enrolled classes, in order
    embeddings: np.ndarray  # (M, D) float32 cached support embeddings
    class_index: np.ndarray  # (M,) int32 position in ``labels`` of each embedding's class
    adaptation: Adaptation  # how the head is adapted
    threshold: float  # below this top probability a prediction is "unknown"
    reject: float | None = None  # open-set rejection at this calibrated false-accept rate (None: off)


@dataclass(frozen=True)
class StateHeader:
    """The archive's ``header`` member: everything but the arrays."""

    format: str  # STATE_FORMAT
    version: int  # STATE_VERSION when written; READABLE_STATE_VERSIONS are read
    backbone_sha256: str  # the backbone the embeddings were computed with
    embedding_dim: int  # D
    labels: tuple[Label, ...]  # enrolled classes, in order
    label_type: str  # "str" or "int": the labels' type
    adaptation: Adaptation  # how the head is adapted
    threshold: float  # below this top probability a prediction is "unknown"
    reject: float | None = None  # open-set rejection's false-accept rate (None: off)


def save_state(path: str | os.PathLike[str], state: EnrollmentState) -> None:
    """Write ``state`` to ``path`` atomically (a crash leaves the previous file intact)."""
    header = StateHeader(STATE_FORMAT, STATE_VERSION, state.backbone_sha256, int(state.embeddings.shape[1]),
                         state.labels, type(state.labels[0]).__name__ if state.labels else "str", state.adaptation,
                         state.threshold, state.reject)
    buffer = io.BytesIO()
    np.savez(buffer, header=np.frombuffer(json.dumps(to_document(header)).encode("utf-8"), dtype=np.uint8),
             embeddings=state.embeddings, class_index=state.class_index)
    write_atomically(path, buffer.getbuffer(), StateError, "the state file")


def file_fingerprint(path: str | os.PathLike[str]) -> tuple[int, ...] | None:
    """What changes whenever the file is rewritten (device, inode, size, mtime); None if absent."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


def check_belongs(state: EnrollmentState, backbone_sha256: str, embedding_dim: int, model: os.PathLike[str] | str,
                  source: str) -> None:
    """:class:`StateError` unless ``state`` was enrolled with this backbone (its SHA-256) at its width."""
    if state.backbone_sha256 != backbone_sha256:
        raise StateError(
            f"{source} was enrolled with backbone {state.backbone_sha256[:12]}…, but this model's backbone is "
            f"{backbone_sha256[:12]}… ({model}); its embeddings do not apply: enroll the classes again with this model")
    if state.embeddings.shape[1:] != (embedding_dim,):
        raise StateError(f"{source} holds embeddings of shape {state.embeddings.shape}, but this backbone's are "
                         f"{embedding_dim}-d: expected (M, {embedding_dim})")


Origin = tuple[Path, "tuple[int, ...] | None"]  # a state file and its fingerprint when last read or written


def save_guarded(path: str | os.PathLike[str], state: EnrollmentState, origin: Origin | None) -> Origin:
    """:func:`save_state` under the file's lock (concurrent writers take turns), refused with
    :class:`StateError` when ``origin`` is this file and another process has rewritten it since
    (saving would lose that process's classes). Returns the new origin."""
    target = Path(path)
    try:
        with exclusive_lock(target):
            if origin is not None and origin[0] == target.resolve() and file_fingerprint(target) != origin[1]:
                raise StateError(f"{target} was changed by another writer since this classifier read or wrote it; "
                                 "saving would lose those changes: load it again and re-apply yours")
            save_state(target, state)
            return target.resolve(), file_fingerprint(target)
    except OSError as exc:  # the lock file cannot be created: no such folder, read-only, ...
        raise StateError(f"cannot write the state file {target}: {exc}") from None


def load_consistent(path: str | os.PathLike[str], build: Callable[[EnrollmentState], T]) -> tuple[T, Origin]:
    """``build(load_state(path))`` from a read that no writer overlapped (the fingerprint is the
    same before and after; retried a few times), and the origin it was read at."""
    target = Path(path)
    for _ in range(5):
        before = file_fingerprint(target)
        built = build(load_state(target))
        if file_fingerprint(target) == before:
            return built, (target.resolve(), before)
    raise StateError(f"{target} keeps changing while it is read: another process is writing it")


def load_state(path: str | os.PathLike[str]) -> EnrollmentState:
    """Read a state written by :func:`save_state`; :class:`StateError` listing every problem."""
    header, embeddings, class_index = _read(Path(path))
    if not isinstance(header, dict) or header.get("format") != STATE_FORMAT:
        found = header.get("format") if isinstance(header, dict) else type(header).__name__
        raise StateError(f"{path} is not an anil-edge state (format {found!r}, expected {STATE_FORMAT!r})")
    version = header.get("version")
    if isinstance(version, bool) or version not in READABLE_STATE_VERSIONS:
        raise StateError(f"{path} has state version {version!r}; this runtime reads versions "
                         f"{', '.join(map(str, READABLE_STATE_VERSIONS))}")
    if version == 1:
        header = upgrade_state_header(header)
    if version in (1, 2):
        header = upgrade_adaptation(header)
    problems: list[str] = []
    read = from_document(StateHeader, header, problems)
    labels = _labels(read.labels, problems) if read else []
    _check_arrays(embeddings, class_index, len(labels), problems)
    if read:
        problems += threshold_problems(read.threshold) + reject_problems(read.reject)  # Decision's rules
    raise_if_problems(problems, StateError, f"{path} is not a valid anil-edge state")
    read = cast(StateHeader, read)  # no problems: the header was read
    return EnrollmentState(read.backbone_sha256, tuple(labels), embeddings, class_index.astype(np.int32),
                           read.adaptation, read.threshold, read.reject)


def _read(path: Path) -> tuple[Any, np.ndarray, np.ndarray]:
    if path.is_dir():
        raise StateError(f"{path} is a folder, not a state file: did you swap the state and the images? "
                         "(anil-edge predict MODEL STATE IMAGES)")
    if not path.is_file():
        raise StateError(f"state file not found: {path}")
    _check_sizes(path)
    try:
        with np.load(path, allow_pickle=False) as archive:
            missing = [m for m in _MEMBERS if m not in archive.files]
            if missing:
                raise StateError(f"{path} is not an anil-edge state: missing {missing}, found {archive.files}")
            arrays = {m: archive[m] for m in _MEMBERS}
    except StateError:
        raise
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile, zlib.error) as exc:
        raise StateError(
            f"{path} is truncated or corrupted ({type(exc).__name__}: {exc}); "
            "expected an anil-edge state file (.npz) written by FewShotClassifier.save"
        ) from None
    not_npy = [m for m, a in arrays.items() if not isinstance(a, np.ndarray)]
    if not_npy:
        raise StateError(f"{path} is truncated or corrupted: members {not_npy} are not numpy arrays")
    if arrays["header"].dtype != np.uint8 or arrays["header"].ndim != 1:
        raise StateError(f"{path}: the header must be UTF-8 JSON bytes (uint8), found {arrays['header'].dtype} "
                         f"{arrays['header'].shape}")
    try:
        header = json.loads(arrays["header"].tobytes().decode("utf-8"))
    except (ValueError, RecursionError) as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise StateError(f"{path} is truncated or corrupted: its header is not UTF-8 JSON ({exc})") from None
    return header, arrays["embeddings"], arrays["class_index"]


def _check_sizes(path: Path) -> None:
    """Refuse archives that would expand beyond the caps (a zip bomb, or not an archive at all),
    and members whose .npy headers declare more than they hold; the archive is opened once."""
    try:
        archive = zipfile.ZipFile(path)
    except (OSError, zipfile.BadZipFile, ValueError) as exc:
        kind = file_kind(path)
        if kind is not None and kind != STATE:  # e.g. predict MODEL MODEL: the arguments swapped
            raise StateError(f"{path} is {kind}, not an enrollment state: did you swap the model and the state? "
                             "(anil-edge predict MODEL STATE IMAGES)") from None
        raise StateError(f"{path} is truncated or corrupted ({type(exc).__name__}: {exc}); "
                         "expected an anil-edge state file (.npz) written by FewShotClassifier.save") from None
    with archive:
        sizes = {info.filename: info.file_size for info in archive.infolist()}
        total = sum(sizes.values())
        if total > MAX_STATE_BYTES or sizes.get("header.npy", 0) > MAX_HEADER_BYTES:
            raise StateError(f"{path} declares {total / 2**20:.0f} MiB of contents (header "
                             f"{sizes.get('header.npy', 0) / 2**20:.1f} MiB); a state may hold at most "
                             f"{MAX_STATE_BYTES / 2**20:.0f} MiB ({MAX_HEADER_BYTES / 2**20:.0f} MiB of header)")
        oversized = _oversized_member(archive, sizes)
    if oversized:
        raise StateError(f"{path} is truncated or corrupted: {oversized}; expected an anil-edge state file (.npz) "
                         "written by FewShotClassifier.save")


def _oversized_member(archive: zipfile.ZipFile, sizes: dict[str, int]) -> str:
    """The first ``.npy`` member whose header declares more data than the member holds (a few KB
    claiming 10¹² rows would make numpy allocate terabytes before it reads a byte), or ""."""
    try:
        for name, size in sizes.items():
            if not name.endswith(".npy"):
                continue
            with archive.open(name) as member:
                version = np.lib.format.read_magic(member)
                read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
                shape, _, dtype = read(member)
            declared = int(np.prod(shape, dtype=object)) * dtype.itemsize
            if declared > size:
                return f"member {name} declares shape {shape} ({declared} bytes) but holds {size} bytes"
    except (OSError, zipfile.BadZipFile, ValueError, EOFError) as exc:
        return f"a member's .npy header is unreadable ({type(exc).__name__}: {str(exc)[:120]})"
    return ""


def _labels(labels: tuple[Label, ...], problems: list[str]) -> list[Label]:
    if len(set(map(repr, labels))) != len(labels):
        problems.append(f"labels must be a list of distinct labels, found {labels!r:.80}")
        return []
    try:
        for label in labels:
            check_label(label, labels[:1])
    except InputError as exc:
        problems.append(str(exc))
        return []
    return list(labels)


def _check_arrays(embeddings: np.ndarray, class_index: np.ndarray, n_labels: int, problems: list[str]) -> None:
    if embeddings.dtype != np.float32 or embeddings.ndim != 2:
        problems.append(f"embeddings must be float32 (M, D), found {embeddings.dtype} {embeddings.shape}")
    elif not np.isfinite(embeddings).all():
        problems.append("embeddings hold NaN or infinite values")
    else:
        problems += embedding_range_problems("the stored embeddings", embeddings)
    if class_index.dtype.kind not in "iu" or class_index.shape != embeddings.shape[:1]:
        problems.append(f"class_index must be integers of shape ({embeddings.shape[0]},), "
                        f"found {class_index.dtype} {class_index.shape}")
    elif n_labels and sorted(set(class_index.tolist())) != list(range(n_labels)):
        problems.append(f"every one of the {n_labels} labels needs at least one embedding and no index may exceed them")
