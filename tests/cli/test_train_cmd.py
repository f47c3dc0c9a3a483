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
