"""examples/web/anil_edge_client.mjs, the one module both JavaScript clients import, names the
graphs' inputs and outputs exactly as anil_edge/runtime/export_files.py does."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from anil_edge.errors import ModelError
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


def test_the_js_module_chooses_the_backbone_as_the_python_runtime_does(tmp_path):
    """The CPU classes, and for each class and precision the file chosen (or a refusal), for INT8
    models that saturate or not, with signed or uint8 weights, measured or not."""
    from anil_edge import cpu_features
    from anil_edge.runtime import int8_variants
    from anil_edge.runtime.int8_variants import Int8Speed, choose_backbone, exact_on, faster_on

    if shutil.which("node") is None:
        pytest.skip("node is needed for the JavaScript clients")
    constants = {"CPU_CLASSES": list(cpu_features.CPU_CLASSES), "X86_MACHINES": list(cpu_features.X86_MACHINES),
                 "ARM64_MACHINES": list(cpu_features.ARM64_MACHINES),
                 "DOT_PRODUCT_CLASSES": list(int8_variants.DOT_PRODUCT_CLASSES),
                 "WIDENING_CLASSES": list(int8_variants.WIDENING_CLASSES),
                 "PRECISIONS": [p for p in int8_variants.PRECISIONS if p != "file"]}
    measured = Int8Speed("EPYC", "x86-avx2", 4.0, 2.5)
    models = {"u8s8": {"format": "u8s8", "weights": "int8", "avx2_saturation_free": False},  # written before exact_on
              "u8u8": {"format": "u8u8", "weights": "uint8", "avx2_saturation_free": True},
              "measured": {"format": "u8s8-reduced", "weights": "int8, 7-bit range", "avx2_saturation_free": True,
                           "exact_on": exact_on(True), "faster_on": faster_on(True, measured)}}
    machines = [("x64", ["avx2"]), ("x86_64", ["avx512_vnni"]), ("AMD64", ["amx_int8"]), ("arm64", ["asimddp"]),
                ("aarch64", []), ("riscv64", [])]
    (tmp_path / "model.onnx").touch()
    (tmp_path / "model.int8.onnx").touch()
    expected = {"classes": [cpu_features.cpu_class(frozenset(flags), m) for m, flags in machines], "choices": {}}
    for name, q in models.items():
        for cls in cpu_features.CPU_CLASSES:
            for precision in ("auto", "fp32", "int8"):
                try:
                    got = choose_backbone(tmp_path / "model.onnx", precision, cls, lambda p, q=q: q).precision
                except ModelError:
                    got = "refused"
                expected["choices"][f"{name} {cls} {precision}"] = got
    files = {"backbone_pixels": {"path": "model.pixels.onnx"}, "backbone_int8_pixels": {"path": "model.int8.pixels.onnx"}}
    script = f"""import('./anil_edge_client.mjs').then((m) => {{
      const models = {json.dumps(models)}, files = {json.dumps(files)};
      const out = {{classes: {json.dumps(machines)}.map(([a, f]) => m.cpuClass(a, f)), choices: {{}}}};
      const constants = Object.fromEntries({json.dumps(list(constants))}.map((k) => [k, m[k]]));
      for (const [name, q] of Object.entries(models)) for (const cls of m.CPU_CLASSES) for (const p of m.PRECISIONS) {{
        const sidecar = {{files: {{...files, backbone_int8_pixels: {{...files.backbone_int8_pixels, quantization: q}}}}}};
        let got; try {{ got = m.chooseBackbone(sidecar, p, cls).precision; }} catch (err) {{ got = 'refused'; }}
        out.choices[`${{name}} ${{cls}} ${{p}}`] = got;
      }}
      console.log(JSON.stringify({{out, constants}}));
    }})"""
    run = subprocess.run(["node", "-e", script], cwd=EXAMPLES / "web", capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    js = json.loads(run.stdout)
    assert js["constants"] == constants
    assert js["out"] == expected
