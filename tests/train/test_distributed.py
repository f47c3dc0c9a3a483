"""torchrun with 2 processes (gloo, CPU) = one process owning both task streams."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("learn2learn")

from anil_edge.train.checkpoint import load_checkpoint
from tests.cli.helpers import TINY

from ..cli.helpers import anil_edge
from .helpers import write_folder

pytestmark = pytest.mark.slow  # subprocesses, a package index, or real training: the slow tier

COMMON = [*TINY, "--norm", "group", "--precision", "fp32", "--no-channels-last", "--meta-batch", "4",
          "--iterations", "3", "--eval-every", "3", "--checkpoint-every", "1"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def torchrun(*args) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", f"--master_port={_free_port()}",
           "-m", "anil_edge", "train", *map(str, args)]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return write_folder(tmp_path_factory.mktemp("data"), {f"class{c:02d}": 4 for c in range(12)})


def _params(path):
    return load_checkpoint(path)["model"]


def _assert_same_model(path_a, path_b, tol=1e-5):
    """Parameters within ``tol``, and the same embeddings.

    A conv bias right before a normalisation cancels out: its gradient is zero up to float
    roundoff, which Adam scales into full-size steps in arbitrary directions. Those biases
    cannot change the function, so they are compared through the embeddings instead.
    """
    from anil_edge.export.trained import load_trained

    a, b = _params(path_a), _params(path_b)
    problems = [k for k in a if not k.endswith("conv.bias")
                and not torch.allclose(a[k].float(), b[k].float(), rtol=tol, atol=tol)]
    assert not problems, problems
    x = torch.randn(6, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        ea, eb = (load_trained(p).model.forward_features(x) for p in (path_a, path_b))
    torch.testing.assert_close(ea, eb, rtol=tol, atol=tol)


@pytest.mark.parametrize("engine", ["fast", "l2l"])
def test_two_ranks_equal_one_process_with_two_streams(data, tmp_path, engine):
    ranks = torchrun(*COMMON, "--engine", engine, "--data", data, "--out-dir", tmp_path / "ddp")
    assert ranks.returncode == 0, ranks.stderr[-3000:]
    single = anil_edge("train", *COMMON, "--engine", engine, "--data", data, "--task-streams", "2",
                       "--out-dir", tmp_path / "one")
    assert single.returncode == 0, single.stderr
    _assert_same_model(tmp_path / "ddp" / "last.pt", tmp_path / "one" / "last.pt")
    assert ranks.stdout.count("best validation accuracy") == 1  # rank 0 speaks, rank 1 does not


def test_distributed_resume(data, tmp_path):
    straight = torchrun(*COMMON, "--data", data, "--out-dir", tmp_path / "a")
    assert straight.returncode == 0, straight.stderr[-3000:]
    first = torchrun(*COMMON, "--data", data, "--out-dir", tmp_path / "b", "--stop-after", "2")
    assert first.returncode == 0, first.stderr[-3000:]
    assert load_checkpoint(tmp_path / "b" / "last.pt")["iteration"] == 2
    second = torchrun(*COMMON, "--data", data, "--out-dir", tmp_path / "b", "--resume")
    assert second.returncode == 0, second.stderr[-3000:]
    _assert_same_model(tmp_path / "a" / "last.pt", tmp_path / "b" / "last.pt", tol=1e-6)


def test_resume_with_another_world_size_is_refused(data, tmp_path):
    first = anil_edge("train", *COMMON, "--data", data, "--out-dir", tmp_path, "--stop-after", "1")
    assert first.returncode == 0, first.stderr
    again = torchrun(*COMMON, "--data", data, "--out-dir", tmp_path, "--resume")
    assert again.returncode != 0
    assert "1 task stream(s) (ranks), this run has 2" in again.stderr


@pytest.mark.skipif(not os.path.isdir("/proc"), reason="finds the ranks through /proc")
def test_a_dead_rank_ends_the_job(data, tmp_path):
    """Kill rank 1 mid-run: torchrun must end the whole job with an error, not hang."""
    import signal
    import time

    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", f"--master_port={_free_port()}",
           "-m", "anil_edge", "train", *map(str, COMMON), "--iterations", "100000", "--eval-every", "100000",
           "--checkpoint-every", "100000", "--dist-timeout", "30", "--data", str(data), "--out-dir", str(tmp_path)]
    job = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        deadline = time.monotonic() + 120
        while not (tmp_path / "metrics.jsonl").is_file() or not (tmp_path / "metrics.jsonl").read_text():
            assert time.monotonic() < deadline and job.poll() is None, "training never started"
            time.sleep(0.5)
        os.kill(_rank_pid(1), signal.SIGKILL)
        _, stderr = job.communicate(timeout=120)
    finally:
        if job.poll() is None:
            job.kill()
    assert job.returncode != 0
    assert "anil_edge FAILED" in stderr or "ChildFailedError" in stderr


def _rank_pid(rank: int) -> int:
    """The process whose environment says RANK=<rank> and that runs ``-m anil_edge train``."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            environ = open(f"/proc/{entry}/environ", "rb").read().split(b"\0")
            cmdline = open(f"/proc/{entry}/cmdline", "rb").read()
        except OSError:
            continue
        if f"RANK={rank}".encode() in environ and b"anil_edge\0train" in cmdline and b"torch.distributed.run" not in cmdline:
            return int(entry)
    raise AssertionError(f"no process for rank {rank}")
