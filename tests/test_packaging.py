"""Packaging rules: one onnxruntime flavour per environment, the runtime's dependencies stay small."""

from __future__ import annotations

import importlib.metadata as md
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FLAVOURS = {"onnxruntime", "onnxruntime-gpu"}


def requirement_name(req: str) -> str:
    for sep in "<>=!~;[ ":
        req = req.split(sep)[0]
    return req.strip().lower()


def test_extras_never_put_both_onnxruntime_flavours_together():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    base = {requirement_name(r) for r in project["dependencies"]}
    assert base == {"numpy"}, "the base install is numpy; the onnxruntime flavour is an explicit extra"
    extras = {k: {requirement_name(r) for r in v} for k, v in project["optional-dependencies"].items()}
    assert extras["cpu"] & FLAVOURS == {"onnxruntime"} and extras["gpu"] & FLAVOURS == {"onnxruntime-gpu"}
    for name, reqs in extras.items():
        if name not in ("cpu", "gpu"):
            assert not reqs & FLAVOURS, f"extra [{name}] must not pull an onnxruntime flavour"


def test_this_environment_has_exactly_one_onnxruntime_flavour():
    installed = set()
    for name in FLAVOURS:
        try:
            md.version(name)
            installed.add(name)
        except md.PackageNotFoundError:
            pass
    assert len(installed) == 1, f"found {sorted(installed)}; scripts/bootstrap.sh keeps exactly one"


def test_setup_prints_a_few_lines_and_keeps_the_rest_in_a_log(tmp_path):
    """``make setup`` (scripts/bootstrap.sh): a line per step on the terminal; what pip and the
    builds print goes to the log file it names. Run with a stand-in interpreter that only talks."""
    import shutil
    import subprocess

    for name in ("pyproject.toml", "scripts/bootstrap.sh", "scripts/build_learn2learn.sh"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / name, tmp_path / name)
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    noisy = venv / "bin" / "python"
    noisy.write_text("#!/bin/sh\necho 'DEPRECATION: noise on stdout'\necho 'Gym has been unmaintained' >&2\nexit 0\n")
    noisy.chmod(0o755)
    result = subprocess.run(["bash", "scripts/bootstrap.sh"], cwd=tmp_path, env={"PATH": "/usr/bin:/bin",
                            "VENV": str(venv)}, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "" and len(result.stderr.splitlines()) <= 8, result.stderr
    assert "noise" not in result.stderr and "Gym" not in result.stderr
    log = venv / "setup.log"
    assert str(log) in result.stderr and "DEPRECATION: noise on stdout" in log.read_text()
    noisy.write_text("#!/bin/sh\necho 'ERROR: no matching distribution' >&2\nexit 1\n")
    (venv / ".anil-edge-bootstrap").unlink()
    failed = subprocess.run(["bash", "scripts/bootstrap.sh"], cwd=tmp_path, env={"PATH": "/usr/bin:/bin",
                            "VENV": str(venv)}, capture_output=True, text=True, timeout=60)
    assert failed.returncode == 1 and "setup failed" in failed.stderr and "no matching distribution" in failed.stderr
