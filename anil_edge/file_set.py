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
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from collections.abc import Sequence
from pathlib import Path

from .atomic import atomic_write, exclusive_lock, fsync_directory
from .errors import ModelError

JOURNAL = "COMMIT.json"
STAGING_PREFIX = ".anil-edge-export-"


def commit_files(folder: Path, staging: Path, moves: Sequence[tuple[Path, Path]], removals: Sequence[Path]) -> None:
    """Move each staged file (inside ``staging``) to its target (a file directly in ``folder``) and
    delete ``removals`` (files in ``folder``), all or nothing across a crash; then delete ``staging``."""
    for staged, _ in moves:  # the files must be on disk before the journal says they are
        _fsync_file(staged)
    journal = {"moves": [[staged.relative_to(staging).as_posix(), target.name] for staged, target in moves],
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
            with contextlib.suppress(FileNotFoundError), exclusive_lock(staging / JOURNAL):
                if (staging / JOURNAL).is_file():  # else the live writer finished while we waited
                    _roll_forward(Path(folder), staging, _read_journal(staging))
                    done.append(staging)
            shutil.rmtree(staging, ignore_errors=True)
    return done


def _roll_forward(folder: Path, staging: Path, journal: dict) -> None:
    """Idempotent: a staged file already moved is not there any more; a removal already done is a no-op."""
    for staged, target in journal["moves"]:
        source = staging / staged
        if source.is_file():
            os.replace(source, folder / target)
    for name in journal["remove"]:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(folder / name)
    fsync_directory(folder)
    os.unlink(staging / JOURNAL)


def _read_journal(staging: Path) -> dict:
    """The journal, refused unless every path stays where a commit may write: staged files inside
    ``staging``, targets and removals plain names in its parent folder."""
    try:
        journal = json.loads((staging / JOURNAL).read_text())
        moves, remove = journal["moves"], journal["remove"]
        ok = (all(isinstance(m, list) and len(m) == 2 and _inside(m[0], nested=True) and _inside(m[1]) for m in moves)
              and all(_inside(name) for name in remove))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ModelError(f"{staging / JOURNAL}: an interrupted export's journal that cannot be read "
                         f"({type(exc).__name__}: {exc}); delete {staging} and export again") from None
    if not ok:
        raise ModelError(f"{staging / JOURNAL}: names files outside its folder; not an anil-edge journal: "
                         f"delete {staging} and export again")
    return {"moves": moves, "remove": remove}


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
