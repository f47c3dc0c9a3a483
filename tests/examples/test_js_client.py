"""examples/web/anil_edge_client.mjs, the one module both JavaScript clients import, names the
graphs' inputs and outputs exactly as anil_edge/runtime/export_files.py does."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from anil_edge.runtime import export_files

from .helpers import EXAMPLES

NAMES = ("ADAPT_INPUTS", "ADAPT_OUTPUTS", "CLASSIFY_INPUTS", "CLASSIFY_OUTPUTS", "PIXELS", "RGBA", "EMBEDDINGS")


def test_the_js_module_and_the_python_contract_name_the_same_inputs_and_outputs():
    if shutil.which("node") is None:
        pytest.skip("node is needed for the JavaScript clients")
    script = ("import('./anil_edge_client.mjs').then((m) => console.log(JSON.stringify("
              f"Object.fromEntries({json.dumps(NAMES)}.map((k) => [k, m[k]])))))")
    out = subprocess.run(["node", "-e", script], cwd=EXAMPLES / "web", capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    js = json.loads(out.stdout)
    for name in NAMES:
        python = getattr(export_files, name)
        assert js[name] == (list(python) if isinstance(python, tuple) else python), name


def test_both_clients_import_the_shared_module():
    assert "import('../web/anil_edge_client.mjs')" in (EXAMPLES / "node" / "enroll_predict.js").read_text()
    assert "from './anil_edge_client.mjs'" in (EXAMPLES / "web" / "app.js").read_text()
