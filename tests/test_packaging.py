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
