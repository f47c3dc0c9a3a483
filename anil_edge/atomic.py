"""Safe file writes: atomic replacement, no writing over an input, one writer at a time.

- :func:`atomic_write`: a crash mid-write leaves the previous file intact. Temporary files are
  named ``.<target>.<pid>-<random>.tmp`` beside the target; a hard kill (SIGKILL, power loss)
  can leave one behind, and the next write of the same target removes those whose process is
  gone. New files get the permissions of ``open()`` (``0o666`` less the umask), not ``0o600``.
- :func:`refuse_output_over_input`: an output path that is one of the command's own inputs is an error.
- :func:`exclusive_lock`: serialises read-modify-write cycles on one file across processes.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO

from .errors import InputError

LEGACY_TMP_AGE_S = 600  # temporaries without a pid in their name (anil-edge 0.1) are stale after this
_UMASK_LOCK = threading.Lock()


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike[str]) -> Iterator[IO[bytes]]:
    """Open a temporary file beside ``path`` for binary writing; rename it over ``path`` on success.

    The temporary file lives in the same directory, so the final ``os.replace`` is an atomic
    rename on POSIX and Windows. If the body raises, ``path`` keeps its previous content and the
    temporary file is removed.

    Raises:
        OSError: the directory does not exist or cannot be written.
    """
    target = Path(path)
    remove_stale_temporaries(target)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.{os.getpid()}-", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp_name, _mode_for(target))
        os.replace(tmp_name, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp_name)
        raise
    fsync_directory(target.parent)


def write_atomically(path: str | os.PathLike[str], data: bytes | memoryview, error: type[Exception],
                     what: str) -> None:
    """Write ``data`` to ``path`` atomically (:func:`atomic_write`); an OSError (a full disk, a
    read-only folder) becomes ``error`` naming ``what`` and the path, in one line."""
    try:
        with atomic_write(path) as handle:
            handle.write(data)
    except OSError as exc:
        raise error(f"cannot write {what} {path}: {exc}") from None


def remove_stale_temporaries(target: Path) -> list[Path]:
    """Delete the temporaries that interrupted writes of ``target`` left; returns them."""
    removed = []
    pattern = re.compile(re.escape(f".{target.name}.") + r"(?:(\d+)-)?\w+\.tmp$")
    with contextlib.suppress(OSError):
        for entry in target.parent.iterdir():
            match = pattern.match(entry.name)
            if match and _is_stale(entry, match.group(1)):
                with contextlib.suppress(OSError):
                    entry.unlink()
                    removed.append(entry)
    return removed


def remove_stale_folders(folder: Path, prefix: str) -> list[Path]:
    """Delete the ``folder/<prefix><pid>-<random>`` staging folders that killed processes left
    (or, without a pid in the name, ones untouched for :data:`LEGACY_TMP_AGE_S`); returns them."""
    removed = []
    pattern = re.compile(re.escape(prefix) + r"(?:(\d+)-)?\w+$")
    with contextlib.suppress(OSError):
        for entry in folder.iterdir():
            match = pattern.match(entry.name)
            if match and entry.is_dir() and _is_stale(entry, match.group(1)):
                shutil.rmtree(entry, ignore_errors=True)
                removed.append(entry)
    return removed


def refuse_output_over_input(output: str | os.PathLike[str], inputs: Iterable[str | os.PathLike[str] | None],
                             what: str = "output") -> None:
    """:class:`InputError` when ``output`` names the same file as one of ``inputs``."""
    out = Path(output)
    for source in inputs:
        if source is None:
            continue
        src = Path(source)
        try:
            same = out.exists() and src.exists() and os.path.samefile(out, src)
        except OSError:
            same = False
        if same or out.resolve() == src.resolve():
            raise InputError(f"the {what} {out} is also an input ({src}): refusing to write over it; "
                             "choose another output path")


@contextlib.contextmanager
def exclusive_lock(path: str | os.PathLike[str]) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` against other processes and threads (through a
    ``.<name>.lock`` file beside it, which stays). Reentrant within a thread, so a
    read-modify-write cycle can hold it around calls that take it again.

    Raises:
        OSError: the lock file cannot be created (no such folder, read-only folder).
    """
    target = Path(path)
    key = str(target.resolve().with_name(f".{target.name}.lock"))
    with _HELD_LOCK:
        entry = _HELD.setdefault(key, _Held())
    with entry.thread_lock:
        if entry.depth == 0:
            handle = open(key, "a+b")
            try:
                _lock(handle)
            except BaseException:
                handle.close()
                raise
            entry.handle = handle
        entry.depth += 1
        try:
            yield
        finally:
            entry.depth -= 1
            if entry.depth == 0 and entry.handle is not None:
                _unlock(entry.handle)
                entry.handle.close()
                entry.handle = None


class _Held:
    """One lock file held by this process: a thread lock in front of the OS lock."""

    def __init__(self) -> None:
        self.thread_lock = threading.RLock()
        self.depth = 0
        self.handle: IO[bytes] | None = None


_HELD: dict[str, _Held] = {}
_HELD_LOCK = threading.Lock()


def _is_stale(entry: Path, pid: str | None) -> bool:
    if pid is None:
        return time.time() - entry.stat().st_mtime > LEGACY_TMP_AGE_S
    if int(pid) == os.getpid():
        return False  # a write in progress in this process (another thread)
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except (PermissionError, OverflowError, OSError):
        return False  # alive (another user's), or unknowable
    return False


def _mode_for(target: Path) -> int:
    """The existing file's permissions, or what ``open()`` would create: 0o666 less the umask."""
    with contextlib.suppress(OSError):
        return target.stat().st_mode & 0o7777
    return 0o666 & ~_umask()


def _umask() -> int:
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    with _UMASK_LOCK:  # no /proc: read it by setting it (briefly) and restoring it
        mask = os.umask(0o022)
        os.umask(mask)
    return mask


if sys.platform == "win32":  # pragma: no cover - exercised on Windows only
    import msvcrt

    def _lock(handle) -> None:
        handle.seek(0)
        msvcrt.locking(handle.fileno(), msvcrt.LK_LOCK, 1)

    def _unlock(handle) -> None:
        handle.seek(0)
        msvcrt.locking(handle.fileno(), msvcrt.LK_UNLCK, 1)
else:
    import fcntl

    def _lock(handle) -> None:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)

    def _unlock(handle) -> None:
        fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


@contextlib.contextmanager
def folder_lock(folder: str | os.PathLike[str]) -> Iterator[None]:
    """Hold an exclusive lock on ``folder`` itself against other processes and threads, with no
    file added to it (flock on the directory; where that does not exist, an ``exclusive_lock``
    file beside it). Two exports into one folder run one after the other with it.

    Raises:
        OSError: the folder cannot be opened.
    """
    if os.name == "nt":
        with exclusive_lock(folder):
            yield
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def fsync_directory(directory: Path) -> None:
    """Persist the rename itself (POSIX); a no-op where directories cannot be opened."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
