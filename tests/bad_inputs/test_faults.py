"""Faults: concurrent writers, hard kills mid-save, full disks, permissions, threads, outputs that
name inputs, a diverging loss. Nothing is lost and nothing is silently wrong."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import signal
import subprocess
import sys
import threading
import time
from unittest import mock

import numpy as np
import pytest

import anil_edge.atomic as atomic_module
from anil_edge.atomic import atomic_write, remove_stale_temporaries
from anil_edge.errors import InputError, StateError
from anil_edge.runtime import FewShotClassifier
from tests.helpers import DIM, atomic_write_with, glyphs
from tests.train.helpers import folder_config, write_folder

CLI = [sys.executable, "-m", "anil_edge"]
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


def _classifier(backbone, classes=3, seed=0):
    images, labels = glyphs(classes, 2, seed=seed)
    clf = FewShotClassifier(backbone)
    for c in range(classes):
        clf.enroll(f"c{c}", images[labels == c])
    return clf


def test_saving_a_state_over_the_model_is_refused(backbone):
    before = backbone.path.read_bytes()
    with pytest.raises(InputError, match="refusing to write over it"):
        _classifier(backbone).save(backbone.path)
    assert backbone.path.read_bytes() == before


def test_export_over_its_own_checkpoint_is_refused(tmp_path):
    pytest.importorskip("torch")
    from anil_edge.export.pipeline import export_checkpoint

    checkpoint = tmp_path / "ck.onnx"
    checkpoint.write_bytes(b"a checkpoint named .onnx")
    with pytest.raises(InputError, match="refusing to write over it"):
        export_checkpoint(checkpoint, checkpoint)
    assert checkpoint.read_bytes() == b"a checkpoint named .onnx"


def test_two_concurrent_enroll_extend_runs_keep_both_classes(model_path, tmp_path):
    """The read-modify-write of one state is serialised across processes (a file lock)."""
    state = tmp_path / "s.npz"
    folders = [write_folder(tmp_path / f"new{k}", {f"class{k}": 2}, size=28) for k in range(4)]
    subprocess.run([*CLI, "enroll", model_path, write_folder(tmp_path / "base", {"base": 2}, size=28),
                    "--state", state], check=True, env=ENV, capture_output=True)
    for round_ in range(2):  # two rounds of two processes started together
        jobs = [subprocess.Popen([*CLI, "enroll", model_path, folders[2 * round_ + k], "--state", state, "--extend"],
                                 env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE) for k in range(2)]
        assert all(job.wait(timeout=120) == 0 for job in jobs)
    from anil_edge.runtime import Backbone

    labels = FewShotClassifier.load(state, Backbone(model_path)).labels
    assert sorted(labels) == ["base", "class0", "class1", "class2", "class3"]


def test_a_stale_classifier_cannot_overwrite_a_newer_state(backbone, tmp_path):
    path = tmp_path / "s.npz"
    _classifier(backbone).save(path)
    first, second = FewShotClassifier.load(path, backbone), FewShotClassifier.load(path, backbone)
    first.enroll_embeddings("from-first", np.ones((1, DIM), np.float32))
    first.save(path)
    second.enroll_embeddings("from-second", np.ones((1, DIM), np.float32))
    with pytest.raises(StateError, match="changed by another writer"):
        second.save(path)
    assert "from-first" in FewShotClassifier.load(path, backbone).labels
    second.save(tmp_path / "elsewhere.npz")  # saving to another path is fine


KILLER = """
import sys, numpy as np
from anil_edge.runtime import Backbone, FewShotClassifier
clf = FewShotClassifier(Backbone(sys.argv[1]))
for k in range(40):
    clf.enroll_embeddings(f"c{k}", np.random.default_rng(k).normal(size=(500, DIM)).astype(np.float32))
print("ready", flush=True)
while True:
    clf.save(sys.argv[2])
""".replace("DIM", str(DIM))


def test_sigkill_mid_save_never_corrupts_the_state_and_leftovers_are_cleaned(backbone, tmp_path):
    path = tmp_path / "s.npz"
    _classifier(backbone).save(path)
    for trial in range(4):
        job = subprocess.Popen([sys.executable, "-c", KILLER, str(backbone.path), str(path)], env=ENV,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert job.stdout.readline().strip() == "ready"
        time.sleep(0.05 + 0.07 * trial)
        job.send_signal(signal.SIGKILL)
        job.wait()
        labels = FewShotClassifier.load(path, backbone).labels  # the old or the new state, never a broken one
        assert labels in (["c0", "c1", "c2"], [f"c{k}" for k in range(40)])
    _classifier(backbone).save(path)  # the next write removes what killed writers left
    assert not [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_only_temporaries_of_dead_writers_are_removed(tmp_path):
    target = tmp_path / "s.npz"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale = tmp_path / f".s.npz.{int(dead.stdout)}-abc123.tmp"
    alive = tmp_path / f".s.npz.{os.getppid()}-def456.tmp"  # a live process: a write may be under way
    mine = tmp_path / f".s.npz.{os.getpid()}-ghi789.tmp"
    other = tmp_path / f".other.npz.{int(dead.stdout)}-abc123.tmp"
    for p in (stale, alive, mine, other):
        p.write_bytes(b"x")
    assert remove_stale_temporaries(target) == [stale]
    assert alive.exists() and mine.exists() and other.exists()


@pytest.mark.parametrize("umask, expected", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_new_files_honour_the_umask(tmp_path, umask, expected):
    old = os.umask(umask)
    try:
        with atomic_write(tmp_path / "f") as handle:
            handle.write(b"x")
    finally:
        os.umask(old)
    assert (tmp_path / "f").stat().st_mode & 0o777 == expected


def test_rewriting_a_file_keeps_its_permissions(tmp_path):
    (tmp_path / "f").write_bytes(b"old")
    os.chmod(tmp_path / "f", 0o640)
    with atomic_write(tmp_path / "f") as handle:
        handle.write(b"new")
    assert (tmp_path / "f").stat().st_mode & 0o777 == 0o640


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EFBIG, errno.EIO, errno.EDQUOT])
def test_a_failing_disk_leaves_the_previous_state(backbone, tmp_path, code):
    path = tmp_path / "s.npz"
    clf = _classifier(backbone)
    clf.save(path)
    before = path.read_bytes()
    clf.enroll_embeddings("more", np.ones((1, DIM), np.float32))
    def full_disk(_real_write):
        def write(data):
            raise OSError(code, os.strerror(code))

        return write

    failing = atomic_write_with(full_disk)
    with mock.patch.object(atomic_module, "atomic_write", failing), pytest.raises(StateError, match="cannot write"):
        clf.save(path)
    assert path.read_bytes() == before
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_threads_enrolling_removing_and_predicting_see_consistent_heads(backbone):
    clf = _classifier(backbone, classes=2)
    rng = np.random.default_rng(0)
    errors, stop = [], threading.Event()
    queries = rng.normal(size=(4, DIM)).astype(np.float32)

    def enroller(k):
        for i in range(60):
            try:
                clf.enroll_embeddings(f"t{k}-{i}", rng.normal(size=(1, DIM)).astype(np.float32))
                if i % 3:
                    clf.remove(f"t{k}-{i - 1}") if f"t{k}-{i - 1}" in clf else None
            except InputError as exc:  # a label removed by the other thread
                if "not enrolled" not in str(exc):
                    errors.append(exc)
            except Exception as exc:  # noqa: BLE001 - any other error is the bug this test looks for
                errors.append(exc)

    def predictor():
        while not stop.is_set():
            try:
                predictions = clf.predict_embeddings(queries)
                labels = {p.best_label for p in predictions}
                assert len(predictions) == 4 and all(isinstance(x, str) for x in labels)
                W, b = clf.fit()
                assert W.shape[0] == b.shape[0]
            except Exception as exc:  # noqa: BLE001
                errors.append(exc)

    threads = [threading.Thread(target=enroller, args=(k,)) for k in range(2)] + [threading.Thread(target=predictor)
                                                                                   for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads[:2]:
        t.join()
    stop.set()
    for t in threads[2:]:
        t.join()
    assert not errors, errors[:3]
    W, b = clf.fit()
    assert W.shape == (len(clf), DIM) and clf.predict_proba_embeddings(queries).shape == (4, len(clf))


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    return write_folder(tmp_path_factory.mktemp("faults"), {f"class{c:02d}": 4 for c in range(12)})


def test_a_diverging_loss_stops_training_and_keeps_the_last_good_checkpoint(tiny_data, tmp_path):
    pytest.importorskip("torch")
    from anil_edge.data.sources import load_split
    from anil_edge.errors import TrainingError
    from anil_edge.train.checkpoint import load_checkpoint
    from anil_edge.train.loop import MetaLoop
    from anil_edge.train.preprocessing import decode_preprocessing
    from anil_edge.train.trainer import train

    config = folder_config(tmp_path, tiny_data)
    split = load_split("folder", config.data, decode_preprocessing(config), validation=0.15, test=0.25, seed=0)
    real_step, calls = MetaLoop.step, []
    torch = pytest.importorskip("torch")

    def step(self, optimizer):
        calls.append(1)
        loss, acc = real_step(self, optimizer)
        return (torch.full_like(loss, float("nan")), acc) if len(calls) == 3 else (loss, acc)

    with mock.patch.object(MetaLoop, "step", step), pytest.raises(TrainingError, match="iterations 3-4"):
        train(config, split)
    assert load_checkpoint(tmp_path / "last.pt")["iteration"] == 2


def _train_args(data, out, *, iterations: int, eval_every: int, checkpoint_every: int) -> list[str]:
    """``anil-edge train`` on the tiny folder data set, into ``out``."""
    return ["train", "--dataset", "folder", "--data", str(data), "--input-size", "28", "--ways", "3", "--shots", "1",
            "--queries", "2", "--hidden", "8", "--blocks", "2", "--meta-batch", "2", "--iterations", str(iterations),
            "--eval-every", str(eval_every), "--eval-tasks", "4", "--checkpoint-every", str(checkpoint_every),
            "--no-progress", "--device", "cpu", "--out-dir", str(out)]


def test_a_full_disk_during_training_is_one_line(tiny_data, tmp_path, capsys):
    pytest.importorskip("torch")
    from anil_edge.cli.main import main
    from anil_edge.train import checkpoint_writer

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    args = _train_args(tiny_data, tmp_path / "run", iterations=2, eval_every=2, checkpoint_every=1)
    with mock.patch.object(checkpoint_writer, "save_checkpoint", full):
        assert main(args) == 2
    err = capsys.readouterr().err
    assert "No space left on device" in err and len(err.strip().splitlines()) == 1


def test_a_disk_that_fills_mid_training_is_one_line_and_keeps_the_last_checkpoint(tiny_data, tmp_path, capsys):
    """The disk fills at the second save's write (not a mocked saver: the bytes reach the file
    handle): one line, exit 2, and the first last.pt is intact and loadable."""
    pytest.importorskip("torch")
    from anil_edge import atomic
    from anil_edge.cli.main import main
    from anil_edge.train import checkpoint
    from anil_edge.train.checkpoint import load_checkpoint

    real = atomic.atomic_write
    saves = []

    class Full:
        def write(self, data):
            raise OSError(errno.ENOSPC, "No space left on device")

    @contextlib.contextmanager
    def filling(path):
        with real(path) as handle:
            saves.append(path)
            yield handle if len(saves) == 1 else Full()

    args = _train_args(tiny_data, tmp_path / "run", iterations=4, eval_every=4, checkpoint_every=2)
    with mock.patch.object(checkpoint, "atomic_write", filling):
        assert main(args) == 2
    err = capsys.readouterr().err
    assert "No space left on device" in err and len(err.strip().splitlines()) == 1
    assert load_checkpoint(tmp_path / "run" / "last.pt")["iteration"] == 2
    assert not [p for p in (tmp_path / "run").iterdir() if p.name.endswith(".tmp")]


def test_a_json_prediction_is_always_valid_json(model_path, tmp_path):
    images = write_folder(tmp_path / "classes", {"a": 2, "b": 2}, size=28)
    subprocess.run([*CLI, "enroll", model_path, images, "--state", tmp_path / "s.npz"], check=True, env=ENV,
                   capture_output=True)
    result = subprocess.run([*CLI, "predict", model_path, tmp_path / "s.npz", images, "--json"], env=ENV,
                            capture_output=True, text=True)
    assert result.returncode == 0
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(rows) == 4 and all(0 <= r["probability"] <= 1 for r in rows)



@pytest.fixture(scope="module")
def tiny_run(tiny_data, tmp_path_factory):
    """A 2-iteration training run: (config, result)."""
    pytest.importorskip("torch")
    from anil_edge.data.sources import load_split
    from anil_edge.train.preprocessing import decode_preprocessing
    from anil_edge.train.trainer import train

    config = folder_config(tmp_path_factory.mktemp("run"), tiny_data, iterations=2, ways=5)
    split = load_split("folder", config.data, decode_preprocessing(config), validation=0.15, test=0.25, seed=0)
    return config, train(config, split)


def test_validation_reports_the_ways_it_really_used(tiny_run):
    """5-way training, but the validation split has fewer classes: the report says how many."""
    config, result = tiny_run
    assert result.validation_ways < config.ways


@pytest.mark.parametrize("iteration", ["x", -1, 2.5, None, True])
def test_a_checkpoint_with_a_malformed_iteration(tiny_run, tmp_path, capsys, iteration):
    from anil_edge.cli.main import main
    from anil_edge.train.checkpoint import load_checkpoint, save_checkpoint

    config, _ = tiny_run
    payload = load_checkpoint(os.path.join(config.out_dir, "last.pt"))
    payload["iteration"] = iteration
    save_checkpoint(tmp_path / "bad.pt", {k: v for k, v in payload.items() if k not in ("format", "version")})
    assert main(["export", str(tmp_path / "bad.pt"), "--out", str(tmp_path / "m.onnx")]) == 2
    err = capsys.readouterr().err
    assert "malformed iteration" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "m.onnx").exists()


def test_a_truncated_glyph_cache_is_rebuilt(tmp_path):
    pytest.importorskip("scipy")
    from anil_edge.data.glyphs import load_glyphs

    first = load_glyphs(instances=2, max_classes=4, cache_dir=str(tmp_path))
    (cache,) = list(tmp_path.glob("glyphs-*.npz"))
    cache.write_bytes(cache.read_bytes()[:100])
    again = load_glyphs(instances=2, max_classes=4, cache_dir=str(tmp_path))
    np.testing.assert_array_equal(again.images, first.images)
    assert again.class_names == first.class_names


BLOCK_TORCH = """
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("torch", "torchvision", "learn2learn", "onnx", "onnxscript"):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
sys.meta_path.insert(0, Block())
from anil_edge.cli.main import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.parametrize("args, needle", [
    (["train", "--dataset", "folder", "--data", "{data}", "--out-dir", "{tmp}/run"], "'torch' package"),
    (["bench", "head"], "'torch' package"),
    (["evaluate", "{tmp}/x.pt"], "'torch' package"),
    (["export", "{tmp}/x.pt"], "'onnx' package"),
])
def test_a_device_install_says_what_to_install(tiny_data, tmp_path, args, needle):
    """numpy + onnxruntime + pillow only: the training commands say what is missing, in one line."""
    (tmp_path / "x.pt").write_bytes(b"x")
    argv = [a.format(data=tiny_data, tmp=tmp_path) for a in args]
    result = subprocess.run([sys.executable, "-c", BLOCK_TORCH, *argv], capture_output=True, text=True, env=ENV)
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert needle in result.stderr and "pip install 'anil-edge[train]'" in result.stderr


def test_the_learn2learn_hint_names_the_build_script():
    from anil_edge.errors import MissingDependencyError, require

    with pytest.raises(MissingDependencyError, match="build_learn2learn.sh"):
        require("learn2learn.not_a_module", "train")  # a missing learn2learn module: the same hint


def test_images_of_another_size_than_the_config_are_refused(tiny_data, tmp_path):
    """A split decoded at 28 px cannot train a 32-px configuration (it would train one model and
    export another)."""
    pytest.importorskip("torch")
    from anil_edge.data.sources import load_split
    from anil_edge.train.preprocessing import decode_preprocessing
    from anil_edge.train.trainer import train

    at_28 = folder_config(tmp_path, tiny_data)
    split = load_split("folder", at_28.data, decode_preprocessing(at_28), validation=0.15, test=0.25, seed=0)
    with pytest.raises(InputError, match=r"training images are \(28, 28, 1\).*takes \(32, 32, 1\)"):
        train(folder_config(tmp_path, tiny_data, input_size=32), split)
