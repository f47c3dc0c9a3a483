"""The README's device install, as written: build the wheel and install it with ``[cpu,images]``
in a fresh virtual environment (no torch), then run the README's runtime example there."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from anil_edge import __version__
from tests.helpers import readme_commands, readme_example_files, readme_snippet

pytestmark = pytest.mark.slow  # subprocesses, a package index, or real training: the slow tier

ROOT = Path(__file__).resolve().parents[1]
Image = pytest.importorskip("PIL.Image")


def test_one_version_everywhere():
    """pyproject reads anil_edge.__version__; the JS examples' package.json carry the same."""
    import json

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "version" not in project["project"] and project["project"]["dynamic"] == ["version"]
    assert project["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "anil_edge.__version__"}
    for client in ("node", "web"):
        assert json.loads((ROOT / "examples" / client / "package.json").read_text())["version"] == __version__


def _run(*args, **kwargs) -> subprocess.CompletedProcess:
    result = subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=900, **kwargs)
    assert result.returncode == 0, f"{args}: {result.stdout[-1500:]}\n{result.stderr[-3000:]}"
    return result


def _shell(line: str, cwd: Path, bin_dir: Path) -> None:
    """A README line run by the shell as written, with ``bin_dir`` first on PATH (an activated venv)."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
    _run("bash", "-c", line, cwd=cwd, env=env)


@pytest.fixture(scope="module")
def device_venv(tmp_path_factory):
    """The README's two device-install lines, as written, in a fresh virtual environment: the
    wheel built from a copy of the sources (the checkout stays clean), then installed with its
    extras from the package index, as a user gets them."""
    build, install = readme_commands("## Use it in an app")
    assert build.startswith("python -m pip wheel") and install.startswith("pip install"), (build, install)
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"
    shutil.copytree(ROOT / "anil_edge", src / "anil_edge", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(ROOT / name, src / name)
    venv = tmp / "venv"
    _run(getattr(sys, "_base_executable", sys.executable), "-m", "venv", venv)
    _shell(build, src, venv / "bin")
    (wheel,) = (src / "dist").glob("*.whl")
    assert wheel.name == f"anil_edge-{__version__}-py3-none-any.whl" and wheel.name in install
    _shell(install, src, venv / "bin")
    return venv


def test_the_device_install_has_no_torch_and_the_command(device_venv):
    python = device_venv / "bin" / "python"
    probe = "import importlib.util as u; print([m for m in ('torch', 'onnx', 'learn2learn') if u.find_spec(m)])"
    assert _run(python, "-c", probe).stdout.strip() == "[]"
    assert _run(device_venv / "bin" / "anil-edge", "--version").stdout.strip() == f"anil-edge {__version__}"


def test_the_readme_example_runs_in_the_device_install(device_venv, model_path, tmp_path):
    pytest.importorskip("onnx")
    readme_example_files(model_path, tmp_path)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    out = _run(device_venv / "bin" / "python", "-c", readme_snippet("## Use it in an app"), cwd=tmp_path,
               env=env).stdout.split()
    assert len(out) >= 4 and (tmp_path / "products.npz").is_file()
