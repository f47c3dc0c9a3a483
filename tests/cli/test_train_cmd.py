"""``anil-edge train`` through the real command line."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("torch")
pytest.importorskip("learn2learn")

from tests.cli.helpers import TINY

from ..train.helpers import write_folder
from .helpers import anil_edge


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return write_folder(tmp_path_factory.mktemp("data"), {f"class{c:02d}": 4 for c in range(12)})


def test_train_then_resume(folder, tmp_path):
    out = tmp_path / "run"
    first = anil_edge("train", *TINY, "--data", folder, "--iterations", "4", "--out-dir", out)
    assert first.returncode == 0, first.stderr
    assert "best validation accuracy" in first.stdout and (out / "best.pt").is_file()
    # --no-progress: the slow steps still say what they do, a line each, with percentages
    assert "validating on 4 tasks at iteration 2" in first.stdout
    assert "iteration 4/4: loss " in first.stdout and "% best validation" not in first.stdout
    assert "best validation not yet" not in first.stdout.split("validating on 4 tasks at iteration 2")[1]
    config = tmp_path / "more.toml"
    config.write_text('[train]\niterations = 4\nmeta_lr = 0.003\n')
    again = anil_edge("train", *TINY, "--data", folder, "--config", config, "--out-dir", out, "--resume")
    assert again.returncode == 0, again.stderr
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    train = [r for r in records if r["split"] == "train"]  # a record per 2-iteration window (checkpoints)
    assert [r["iteration"] for r in train] == [1, 3] and sum(r["iterations"] for r in train) == 4


def test_ctrl_c_saves_last_pt_and_says_where_resume_continues(folder, tmp_path):
    """The first Ctrl-C finishes the iteration, saves last.pt there and says so (exit 130); the
    work since the last periodic checkpoint is not lost, and --resume continues from it."""
    import os
    import signal
    import subprocess
    import sys
    import time

    from anil_edge.train.checkpoint import load_checkpoint

    def iteration(path):
        return load_checkpoint(path)["iteration"]

    out = tmp_path / "run"
    args = [*TINY, "--data", folder, "--iterations", "40", "--checkpoint-every", "40", "--eval-every", "40",
            "--log-every", "1", "--out-dir", out]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    proc = subprocess.Popen([sys.executable, "-m", "anil_edge.cli.main", "train", *map(str, args)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    metrics = out / "metrics.jsonl"
    deadline = time.monotonic() + 240
    while not (metrics.is_file() and len(metrics.read_text().splitlines()) >= 3):  # a few iterations run
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr
    saved = iteration(out / "last.pt")
    assert saved >= 3  # no periodic checkpoint was due: without the graceful stop there would be no last.pt
    assert f"saved {out / 'last.pt'} after iteration {saved}" in stderr and "--resume" in stderr
    assert saved < 40, "the run ended before the interrupt: make it longer"
    resumed = anil_edge("train", *map(str, args), "--resume")
    assert resumed.returncode == 0, resumed.stderr
    assert iteration(out / "last.pt") == 40


def test_too_few_images_per_class_is_refused_before_the_speed_trial(tmp_path):
    """One image per class cannot give a support and a query image: refused in seconds, before
    the speed options are timed, with what to do."""
    data = write_folder(tmp_path / "one", {f"c{c:02d}": 1 for c in range(12)})
    result = anil_edge("train", *TINY, "--data", data, "--iterations", "4", "--out-dir", tmp_path / "run")
    assert result.returncode == 2
    assert "fewer than shots + queries = 3 images" in result.stderr and "add images" in result.stderr
    assert "auto:" not in result.stdout  # the speed trial never ran


def test_help_shows_defaults():
    result = anil_edge("train", "--help")
    assert result.returncode == 0
    assert "--fast-lr FLOAT" in result.stdout and "(default: 0.5)" in result.stdout


@pytest.mark.parametrize("args,message", [
    (["--data", "/no/such/folder"], "no such folder"),
    (["--ways", "1"], "ways must be >= 2, found 1"),
    (["--config", "/no/such.toml"], "config file not found"),
    (["--resume"], "checkpoint not found"),
])
def test_user_errors_are_one_line(folder, tmp_path, args, message):
    result = anil_edge("train", *TINY, "--data", folder, "--out-dir", tmp_path / "never", *args)
    assert result.returncode == 2
    assert message in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "never").exists()
