"""Several files replaced as one: after a crash at any moment a folder holds the old set or the
new one, complete.

An export is several files (``model.onnx``, its head graphs, pixel models, ``.ort`` files and
the ``model.json`` that hashes them all). One rename switches one file, not seven; a folder swap
or a symlink would change the names apps open (``model.onnx``, ``model.pixels.onnx``) and does
not exist on every platform. So a set is committed with a roll-forward journal, as a database's
redo log or SQLite's hot journal:

1. every new file is written and fsynced in a staging folder beside the targets;
2. ``COMMIT.json`` (the renames and removals) is written atomically into it: the commit point;
3. the files are renamed into place, files of the old set that the new one lacks are removed;
4. the journal, then the staging folder, are deleted.

Killed before 2, the old set is untouched (the staging folder is garbage, removed by the next
export). Killed after 2, the journal says what is left: :func:`complete_interrupted` does it, and
every reader calls it before opening a file (``Backbone``, the head graphs, the next export), so
no reader ever sees a mix. A lock in the staging folder keeps a reader from completing a commit
that a live process is still doing.

A model folder is often received from elsewhere (an app bundle, a download, a shared drive), so
a reader completes only a journal that can be nothing but an anil-edge export's own
(:func:`_read_journal`): the staging folder and the journal are no symlinks; every staged file is
a regular file inside the staging folder (real paths compared) whose SHA-256 the journal
records; every target and removal is one export's name (``B.onnx``, ``B.<companion suffix>``,
``required_operators.config``), and the moves include ``B.onnx`` and ``B.json``. Anything else
is refused in one line and nothing is touched: an enrollment state or a user's file beside the
model is never renamed over or removed. Readers still complete a valid journal (rather than
leaving it to the next export) so that an app never opens a half-committed set.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
from collections.abc import Sequence
from pathlib import Path

from ..atomic import atomic_write, exclusive_lock, fsync_directory
from ..errors import ModelError
from .documents import parse_json
from .export_files import output_suffixes

JOURNAL = "COMMIT.json"
JOURNAL_VERSION = 2  # moves carry the staged file's SHA-256
STAGING_PREFIX = ".anil-edge-export-"
MAX_JOURNAL_BYTES = 1 << 20  # an export's journal names a few dozen files
EXTRA_NAMES = ("required_operators.config",)  # written beside the model by --ort, not named after it


def commit_files(folder: Path, staging: Path, moves: Sequence[tuple[Path, Path]], removals: Sequence[Path]) -> None:
    """Move each staged file (inside ``staging``) to its target (a file directly in ``folder``) and
    delete ``removals`` (files in ``folder``), all or nothing across a crash; then delete ``staging``."""
    for staged, _ in moves:  # the files must be on disk before the journal says they are
        _fsync_file(staged)
    journal = {"version": JOURNAL_VERSION,
               "moves": [[staged.relative_to(staging).as_posix(), target.name, _sha256(staged)]
                         for staged, target in moves],
               "remove": [path.name for path in removals]}
    with exclusive_lock(staging / JOURNAL):
        with atomic_write(staging / JOURNAL) as handle:
            handle.write(json.dumps(journal).encode())
        fsync_directory(staging)
        _roll_forward(folder, staging, journal)
    shutil.rmtree(staging, ignore_errors=True)


def complete_interrupted(folder: str | os.PathLike[str]) -> list[Path]:
    """Finish every commit into ``folder`` that a killed process left half done; returns the
    staging folders it completed. A folder that cannot be written (an app's read-only assets)
    never had a commit interrupted in it, and costs one directory listing."""
    done = []
    with contextlib.suppress(OSError):
        candidates = [entry for entry in Path(folder).iterdir()
                      if entry.name.startswith(STAGING_PREFIX) and (entry / JOURNAL).is_file()]
        for staging in candidates:
            if staging.is_symlink() or (staging / JOURNAL).is_symlink():  # its lock would land elsewhere
                raise ModelError(f"{staging}: an export journal reached through a symlink; not an anil-edge export's: "
                                 f"delete {staging}")
            with contextlib.suppress(FileNotFoundError), exclusive_lock(staging / JOURNAL):
                if (staging / JOURNAL).is_file():  # else the live writer finished while we waited
                    _roll_forward(Path(folder), staging, _read_journal(staging))
                    done.append(staging)
            shutil.rmtree(staging, ignore_errors=True)
    return done


def _roll_forward(folder: Path, staging: Path, journal: dict) -> None:
    """Idempotent: a staged file already moved is not there any more; a removal already done is a no-op."""
    for staged, target, *_ in journal["moves"]:
        source = staging / staged
        if source.is_file():
            os.replace(source, folder / target)
    for name in journal["remove"]:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(folder / name)
    fsync_directory(folder)
    os.unlink(staging / JOURNAL)


def _read_journal(staging: Path) -> dict:
    """The journal, refused unless it can only finish an anil-edge export (module doc)."""
    path = staging / JOURNAL
    try:
        journal = parse_json(path.read_bytes(), max_bytes=MAX_JOURNAL_BYTES)
        moves, remove = journal["moves"], journal["remove"]
        shaped = (journal.get("version") == JOURNAL_VERSION and isinstance(moves, list) and isinstance(remove, list)
                  and all(isinstance(m, list) and len(m) == 3 and all(isinstance(x, str) for x in m) for m in moves))
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ModelError(f"{path}: an interrupted export's journal that cannot be read "
                         f"({type(exc).__name__}: {str(exc)[:120]}); delete {staging} and export again") from None
    problem = "not the journal's format" if not shaped else _journal_problem(staging, moves, remove)
    if problem:
        raise ModelError(f"{path}: {problem}; not an anil-edge export's journal, nothing was changed: "
                         f"delete {staging} and export again")
    return {"moves": moves, "remove": remove}


def _journal_problem(staging: Path, moves: list, remove: list) -> str:
    """Why the journal could touch what no export wrote (empty: it cannot)."""
    if not all(_inside(m[0], nested=True) and _inside(m[1]) for m in moves) or not all(_inside(n) for n in remove):
        return "it names files outside its folder"
    names = [m[1] for m in moves] + list(remove)
    bases = _export_bases(names)
    if not any({f"{b}.onnx", f"{b}.json"} <= {m[1] for m in moves} for b in bases):
        return f"its names {sorted(names)[:6]} are not one export's files (B.onnx, B.json and B's companions)"
    root = os.path.realpath(staging)
    for staged, _, digest in moves:
        source = staging / staged
        if not source.exists():  # already moved by an earlier, interrupted completion
            continue
        if source.is_symlink() or not source.is_file() or not os.path.realpath(source).startswith(root + os.sep):
            return f"staged file {staged} is not a regular file inside the staging folder"
        if _sha256(source) != digest:
            return f"staged file {staged} is not the file it recorded (SHA-256 differs)"
    return ""


def _export_bases(names: list[str]) -> set[str]:
    """The bases B for which every name is ``B.onnx``, ``B.<companion suffix>`` or an extra name."""
    suffixes = ("onnx", *output_suffixes())
    bases: set[str] | None = None
    for name in names:
        if name in EXTRA_NAMES:
            continue
        options = {name[: -len(suffix) - 1] for suffix in suffixes if name.endswith("." + suffix)}
        bases = options if bases is None else bases & options
    return {b for b in bases or set() if b}


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _inside(name: object, nested: bool = False) -> bool:
    if not isinstance(name, str) or not name or name.startswith("/") or "\\" in name:
        return False
    parts = name.split("/")
    return (nested or len(parts) == 1) and all(part not in ("", ".", "..") for part in parts)


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
