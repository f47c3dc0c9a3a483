"""Mobile readiness: a fixed batch, the .ort format with its operator config, the usability check."""

from __future__ import annotations

import pytest

ort = pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")

from anil_edge.cli.main import main
from anil_edge.errors import InputError
from anil_edge.export.deployment_files import write_deployment_files
from anil_edge.export.mobile import convert_to_ort, fix_batch, usability_report
from tests.conftest import glyphs
from tests.tolerances import assert_f32_close, conv_terms


@pytest.fixture(scope="module")
def files(model_path, tmp_path_factory):
    folder = tmp_path_factory.mktemp("mobile")
    model = folder / "model.onnx"
    model.write_bytes(model_path.read_bytes())
    return write_deployment_files(model, lambda suffix: folder / f"model.{suffix}", pixels=True)


def test_fixed_batch_makes_the_pixel_model_static(files, tmp_path):
    path = tmp_path / "pixels.onnx"
    path.write_bytes(files["backbone_pixels"].read_bytes())
    fix_batch(path, 4)
    session = ort.InferenceSession(str(path))
    assert session.get_inputs()[0].shape == [4, 28, 28, 1] and session.get_outputs()[0].shape[0] == 4
    images, _ = glyphs(2, 2)
    assert session.run(None, {"pixels": images[..., None]})[0].shape[0] == 4
    with pytest.raises(InputError, match="fixed batch size must be an integer >= 1"):
        fix_batch(path, 0)


def test_ort_format_files_load_and_match(files, tmp_path):
    written = convert_to_ort([files["backbone_pixels"], files["head_adapt"], files["head_classify"]], tmp_path)
    names = sorted(p.name for p in written)
    assert "model.head_adapt.ort" in names and "model.pixels.ort" in names
    assert any(n.endswith(".config") for n in names)  # the operators a reduced onnxruntime build needs
    images, _ = glyphs(2, 2)
    onnx_out = ort.InferenceSession(str(files["backbone_pixels"])).run(None, {"pixels": images[..., None]})[0]
    ort_out = ort.InferenceSession(str(tmp_path / "model.pixels.ort")).run(None, {"pixels": images[..., None]})[0]
    assert_f32_close(ort_out, onnx_out, terms=conv_terms(32, 4))


def test_info_reports_mobile_usability(files, capsys):
    assert "NNAPI" in usability_report(files["backbone_pixels"])
    assert main(["info", str(files["backbone_pixels"]), "--mobile"]) == 0
    out = capsys.readouterr().out
    assert "Checking NNAPI" in out and "CoreML" in out
