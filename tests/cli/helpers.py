"""Run the real ``anil-edge`` command line in a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys


def anil_edge(*args: str, cwd=None, timeout: float = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    return subprocess.run([sys.executable, "-m", "anil_edge.cli.main", *map(str, args)], capture_output=True,
                          text=True, cwd=cwd, env=env, timeout=timeout)

# A tiny `anil-edge train` on a folder data set, seconds on a CPU.
TINY = ["--dataset", "folder", "--input-size", "28", "--ways", "3", "--shots", "1", "--queries", "2",
        "--hidden", "8", "--blocks", "2", "--meta-batch", "2", "--eval-every", "2", "--eval-tasks", "4",
        "--checkpoint-every", "2", "--no-progress", "--threads", "1", "--device", "cpu"]
