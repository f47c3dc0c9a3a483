"""An export's files are committed as one set (anil_edge.runtime.file_set): SIGKILL at every step of the
commit leaves, once a reader has looked, the old set or the new one, complete — never a mix."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from anil_edge.atomic import exclusive_lock
from anil_edge.errors import ModelError
from anil_edge.runtime.file_set import JOURNAL, STAGING_PREFIX, commit_files, complete_interrupted

OLD = {"model.onnx": b"old backbone", "model.json": b"old sidecar", "model.int8.onnx": b"old int8",
       "model.pixels.onnx": b"old pixels"}
NEW = {"model.onnx": b"new backbone", "model.json": b"new sidecar", "model.head_adapt.onnx": b"new adapt",
       "model.pixels.onnx": b"new pixels"}
# Run in a child: commit NEW over OLD, with SIGKILL at the k-th file-system step (0: none); prints the step count.
CHILD = textwrap.dedent("""
    import os, signal, sys
    from pathlib import Path
    from anil_edge.runtime.file_set import commit_files
    folder, kill_at = Path(sys.argv[1]), int(sys.argv[2])
    staging = next(folder.glob(".anil-edge-export-*"))
    moves = [(p, folder / p.name) for p in sorted(staging.iterdir())]
    removals = [folder / name for name in sys.argv[3:]]
    steps = [0]
    def counted(real):
        def step(*args, **kwargs):
            steps[0] += 1
            if steps[0] == kill_at:
                os.kill(os.getpid(), signal.SIGKILL)
            return real(*args, **kwargs)
        return step
    for name in ("replace", "unlink", "rmdir", "fsync"):
        setattr(os, name, counted(getattr(os, name)))
    commit_files(folder, staging, moves, removals)
    print(steps[0])
""")


def _prepare(folder: Path) -> None:
    folder.mkdir()
    for name, data in OLD.items():
        (folder / name).write_bytes(data)
    staging = folder / f"{STAGING_PREFIX}{os.getpid()}-test"
    staging.mkdir()
    for name, data in NEW.items():
        (staging / name).write_bytes(data)


def _sha(path: Path) -> str:
    return __import__("hashlib").sha256(path.read_bytes()).hexdigest()


def _journal(staging: Path, moves: list[tuple[str, str]], remove: list[str]) -> dict:
    """A journal as commit_files writes it (format 2: each staged file's SHA-256)."""
    return {"version": 2, "moves": [[a, b, _sha(staging / a) if (staging / a).is_file() else "0" * 64] for a, b in moves],
            "remove": remove}


def _commit_in_child(folder: Path, kill_at: int) -> subprocess.CompletedProcess:
    stale = sorted(set(OLD) - set(NEW))
    return subprocess.run([sys.executable, "-c", CHILD, str(folder), str(kill_at), *stale],
                          capture_output=True, text=True, timeout=60)


def _visible(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")}


@pytest.mark.bad_input
def test_sigkill_at_every_step_of_a_commit_leaves_the_old_set_or_the_new_one(tmp_path):
    _prepare(tmp_path / "count")
    done = _commit_in_child(tmp_path / "count", 0)
    assert done.returncode == 0, done.stderr
    steps = int(done.stdout)
    assert steps >= len(NEW) + 2  # at least: fsyncs, the journal, each rename
    outcomes = []
    for kill_at in range(1, steps + 1):
        folder = tmp_path / f"kill{kill_at}"
        _prepare(folder)
        killed = _commit_in_child(folder, kill_at)
        assert killed.returncode == -9, (kill_at, killed.stdout, killed.stderr)
        complete_interrupted(folder)  # what every reader does first
        seen = _visible(folder)
        assert seen in (OLD, NEW), (kill_at, sorted(seen))
        outcomes.append("new" if seen == NEW else "old")
        # Nothing left to do: a staging folder may stay (killed while deleting it), without a journal;
        # the next export removes it (a dead process's, test_a_re_export_leaves_one_exports_files).
        assert not list(folder.glob(f"{STAGING_PREFIX}*/{JOURNAL}")), kill_at
    # Before the journal is written: old; from then on: new (and both happen).
    assert outcomes == sorted(outcomes, key=lambda o: o == "new") and {"old", "new"} <= set(outcomes)


@pytest.mark.bad_input
def test_a_reader_waits_for_a_commit_a_live_process_is_doing(tmp_path):
    """A staging folder with a journal whose lock is held: the reader blocks, not rolls forward."""
    _prepare(tmp_path / "m")
    staging = next((tmp_path / "m").glob(f"{STAGING_PREFIX}*"))
    (staging / JOURNAL).write_text(json.dumps(_journal(staging, [(n, n) for n in NEW], ["model.int8.onnx"])))
    finished = threading.Event()
    with exclusive_lock(staging / JOURNAL):
        reader = threading.Thread(target=lambda: (complete_interrupted(tmp_path / "m"), finished.set()))
        # The same process's lock is reentrant per thread only: another thread must wait.
        reader.start()
        time.sleep(0.3)
        assert not finished.is_set() and _visible(tmp_path / "m") == OLD
    reader.join(10)
    assert finished.is_set() and _visible(tmp_path / "m") == NEW


def _hostile(kind: str, folder: Path, staging: Path, outside: Path) -> None:
    """Write a journal (or staging layout) of ``kind`` that no export of anil-edge writes."""
    full = [(n, n) for n in NEW]
    if kind == "target outside":
        journal = _journal(staging, [*full, ("model.onnx", "../outside.onnx")], [])
    elif kind == "staged outside":
        journal = _journal(staging, [*full[1:], ("../../outside/thesis.txt", "model.onnx")], [])
    elif kind == "absolute removal":
        journal = _journal(staging, full, ["/etc/hosts"])
    elif kind == "removes the user's state":
        journal = _journal(staging, [], ["faces.state.npz"])
    elif kind == "replaces the user's state":
        journal = _journal(staging, [*full, ("model.onnx", "faces.state.npz")], [])
    elif kind == "staged through a symlink":
        (staging / "d").symlink_to(outside)
        journal = _journal(staging, [*full[1:], ("d/thesis.txt", "model.onnx")], [])
    elif kind == "staged file changed":
        journal = _journal(staging, full, [])
        (staging / "model.onnx").write_bytes(b"something else")
    elif kind == "symlinked journal":
        (outside / "COMMIT.json").write_text(json.dumps(_journal(staging, full, [])))
        (staging / JOURNAL).symlink_to(outside / "COMMIT.json")
        return
    elif kind == "deeply nested":
        (staging / JOURNAL).write_text("[" * 100_000)
        return
    else:  # "old format": no hashes
        journal = {"moves": [[n, n] for n in NEW], "remove": []}
    (staging / JOURNAL).write_text(json.dumps(journal))


@pytest.mark.bad_input
@pytest.mark.parametrize("kind", ["target outside", "staged outside", "absolute removal", "removes the user's state",
                                  "replaces the user's state", "staged through a symlink", "staged file changed",
                                  "symlinked journal", "deeply nested", "old format"])
def test_a_journal_that_is_not_an_exports_own_is_refused_and_nothing_changes(tmp_path, kind):
    """A model folder received from elsewhere: its journal may only finish an anil-edge export; a
    user's file beside the model and files outside the folder are never touched."""
    _prepare(tmp_path / "m")
    (tmp_path / "m" / "faces.state.npz").write_bytes(b"the user's enrollment")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "thesis.txt").write_bytes(b"a file outside the model folder")
    staging = next((tmp_path / "m").glob(f"{STAGING_PREFIX}*"))
    _hostile(kind, tmp_path / "m", staging, outside)
    before_outside = sorted(p.name for p in outside.iterdir())
    with pytest.raises(ModelError, match=r"(COMMIT.json|symlink)[^\n]*(not an anil-edge export|cannot be read|"
                                         r"delete)"):
        complete_interrupted(tmp_path / "m")
    assert _visible(tmp_path / "m") == {**OLD, "faces.state.npz": b"the user's enrollment"}
    assert sorted(p.name for p in outside.iterdir()) == before_outside  # no file moved out, no lock file made
    assert (outside / "thesis.txt").read_bytes() == b"a file outside the model folder"


@pytest.mark.bad_input
def test_an_unreadable_journal_is_one_line(tmp_path):
    _prepare(tmp_path / "m")
    staging = next((tmp_path / "m").glob(f"{STAGING_PREFIX}*"))
    (staging / JOURNAL).write_text("{half")
    with pytest.raises(ModelError, match="journal that cannot be read .*delete .* and export again"):
        complete_interrupted(tmp_path / "m")


def test_a_folder_without_an_interrupted_commit_is_left_alone(tmp_path):
    _prepare(tmp_path / "m")  # a staging folder with no journal: before the commit point
    assert complete_interrupted(tmp_path / "m") == []
    assert _visible(tmp_path / "m") == OLD
    assert complete_interrupted(tmp_path / "missing") == []


def test_commit_files_in_process(tmp_path):
    _prepare(tmp_path / "m")
    staging = next((tmp_path / "m").glob(f"{STAGING_PREFIX}*"))
    commit_files(tmp_path / "m", staging, [(p, tmp_path / "m" / p.name) for p in staging.iterdir()],
                 [tmp_path / "m" / "model.int8.onnx"])
    assert _visible(tmp_path / "m") == NEW and not staging.exists()


@pytest.mark.bad_input
def test_a_second_export_into_a_folder_waits_for_the_first_to_commit(tmp_path):
    """Two exports whose commits overlapped left a model.json whose hash did not match model.onnx:
    an export holds the folder's lock from staging to commit, and adds no file for it."""
    from anil_edge.atomic import folder_lock
    from anil_edge.export import pipeline

    entered = threading.Event()

    def second_export() -> None:
        with pipeline._staging(tmp_path):
            entered.set()

    with folder_lock(tmp_path):  # the first export, between its staging and its commit
        worker = threading.Thread(target=second_export)
        worker.start()
        time.sleep(0.3)
        assert not entered.is_set()
    worker.join(10)
    assert entered.is_set() and list(tmp_path.iterdir()) == []
