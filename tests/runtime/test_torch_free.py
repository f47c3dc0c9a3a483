"""The device runtime imports and works with torch and learn2learn unimportable."""

from __future__ import annotations

import json

import numpy as np

from tests.helpers import glyphs, run_isolated


def test_blocker_really_blocks_torch():
    result = run_isolated("import torch")
    assert result.returncode != 0 and "blocked for this test: torch" in result.stderr


def test_runtime_enrolls_and_predicts_without_torch(model_path, tmp_path):
    images, _ = glyphs(2, 3, seed=4)
    np.save(tmp_path / "images.npy", images)
    result = run_isolated(
        f"""
        import json, numpy as np
        import anil_edge.runtime as rt
        bb = rt.Backbone({str(model_path)!r})
        clf = rt.FewShotClassifier(bb, head_init="prototype", adaptation_steps=0)
        a, b = np.load({str(tmp_path / "images.npy")!r}).reshape(2, 3, 28, 28)
        clf.enroll("a", a)
        clf.enroll("b", b)
        clf.save({str(tmp_path / "s.npz")!r})
        again = rt.FewShotClassifier.load({str(tmp_path / "s.npz")!r}, bb)
        preds = again.predict(np.concatenate([a, b]))
        loaded = sorted(m for m in __import__("sys").modules if m.split(".")[0] in ("torch", "learn2learn"))
        print(json.dumps({{"labels": [p.label for p in preds], "loaded": loaded}}))
        """
    )
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["loaded"] == []
    assert out["labels"] == ["a", "a", "a", "b", "b", "b"]


def test_every_data_module_imports_without_torch():
    """anil_edge.data is numpy code every stage uses: no module of it needs torch or onnx."""
    from pathlib import Path

    names = sorted(f"anil_edge.data.{p.stem}" for p in (Path(__file__).parents[2] / "anil_edge" / "data").glob("*.py")
                   if p.stem != "__init__")
    result = run_isolated("import importlib\n" + "".join(f"importlib.import_module({n!r})\n" for n in names))
    assert result.returncode == 0, result.stderr
