"""Mobile readiness: a fixed batch, the .ort format with its operator config, the usability check."""

from __future__ import annotations

import numpy as np
import pytest

ort = pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")

from anil_edge.cli.main import main
from anil_edge.errors import InputError
from anil_edge.export.deployment_files import write_deployment_files
from anil_edge.export.mobile import convert_to_ort, fix_batch, usability_report
from tests.helpers import glyphs
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
    config = next(p for p in written if p.name.endswith(".config"))  # the operators a reduced build needs
    assert "# - model.pixels.ort" in config.read_text() and "/tmp" not in config.read_text()  # names shipped files
    images, _ = glyphs(2, 2)
    onnx_out = ort.InferenceSession(str(files["backbone_pixels"])).run(None, {"pixels": images[..., None]})[0]
    ort_out = ort.InferenceSession(str(tmp_path / "model.pixels.ort")).run(None, {"pixels": images[..., None]})[0]
    assert_f32_close(ort_out, onnx_out, terms=conv_terms(32, 4))


def test_info_reports_mobile_usability(files, capsys):
    assert "NNAPI" in usability_report(files["backbone_pixels"])
    assert main(["info", str(files["backbone_pixels"]), "--mobile", "--verbose"]) == 0
    out = capsys.readouterr().out
    assert "execution provider" in out and "Checking NNAPI" in out and "CoreML" in out  # table, then the raw report
    assert main(["info", str(files["backbone_pixels"]), "--mobile"]) == 0
    assert "Checking NNAPI" not in capsys.readouterr().out  # the raw report only with --verbose


@pytest.fixture(scope="module")
def cosine(torch_backbone, tmp_path_factory):
    """The tiny Conv-4 with the default cosine embedding (ScaledNormalized), exported with a
    pixel model of fixed batch 1, as `anil-edge export --fixed-batch 1` writes it."""
    from anil_edge.export.onnx_export import export_onnx
    from anil_edge.train.backbones import ScaledNormalized
    from tests.helpers import GRAY, TINY_ADAPTATION, TINY_TRAINING, tiny_head

    folder = tmp_path_factory.mktemp("cosine")
    model = ScaledNormalized(torch_backbone).eval()
    export_onnx(model, folder / "model.onnx", preprocessing=GRAY, adaptation=TINY_ADAPTATION,
                learned_head=tiny_head(), training=TINY_TRAINING)
    written = write_deployment_files(folder / "model.onnx", lambda suffix: folder / f"model.{suffix}", pixels=True)
    fix_batch(written["backbone_pixels"], 1)
    return folder, model


def test_the_mobile_normalisation_equals_the_training_one(cosine):
    import torch

    folder, model = cosine
    images, _ = glyphs(3, 2)
    x = torch.from_numpy(images[:, None].astype(np.float32) / 255)
    with torch.no_grad():
        expected = model(x).numpy()
    got = ort.InferenceSession(str(folder / "model.onnx")).run(None, {"images": x.numpy()})[0]
    assert_f32_close(got, expected, terms=conv_terms(32, 4))
    assert np.allclose(np.linalg.norm(got, axis=1), float(model.log_scale.detach().exp()), rtol=1e-5)


def test_the_default_pixel_model_runs_whole_on_nnapi_and_core_ml(cosine):
    """The cosine normalisation is exported as MatMul/Clip/Sqrt/Div (no ReduceSum, no Reciprocal):
    at a fixed batch every EP takes every node in one partition."""
    import onnx

    from anil_edge.export.mobile import EPS, mobile_verdicts

    ops = {node.op_type for node in onnx.load(str(cosine[0] / "model.pixels.onnx")).graph.node}
    assert "MatMul" in ops and not ops & {"ReduceSum", "Reciprocal", "Pow"}
    rows = mobile_verdicts(cosine[0] / "model.pixels.onnx")
    assert [r.ep for r in rows] == list(EPS)
    for row in rows:
        assert (row.partitions, row.supported, row.verdict, row.unsupported) == (1, row.nodes, "YES", ()), row


def test_info_mobile_on_the_float_model_checks_the_pixel_model_beside_it(cosine, capsys):
    folder = cosine[0]
    assert main(["info", str(folder / "model.onnx"), "--mobile"]) == 0
    out = capsys.readouterr().out
    assert "check of model.pixels.onnx (the pixel model beside model.onnx: the file a phone runs)" in out
    assert out.count(" YES ") == 3 and "dynamic shapes" not in out


def test_info_mobile_says_when_shapes_are_dynamic(files, capsys):
    assert main(["info", str(files["backbone_pixels"]), "--mobile"]) == 0
    out = capsys.readouterr().out
    assert "NO (YES with fixed shapes)" in out and "--fixed-batch 1" in out


def test_info_shows_each_files_real_inputs(cosine, capsys):
    folder = cosine[0]
    assert main(["info", str(folder / "model.onnx")]) == 0
    assert "file input       images float32 [batch, 1, 28, 28] (N, C, H, W) preprocessed" in capsys.readouterr().out
    assert main(["info", str(folder / "model.pixels.onnx")]) == 0
    out = capsys.readouterr().out
    assert "pixels uint8 [1, 28, 28, 1] (N, H, W, C) raw pixels" in out
    assert "clients resize   model.preprocess.onnx: any RGBA size, lanczos as training decoded" in out


@pytest.mark.bad_input
def test_info_reads_ort_files_and_refuses_mobile_on_them_in_one_line(files, tmp_path, capsys):
    (written,) = [p for p in convert_to_ort([files["backbone_pixels"]], tmp_path) if p.suffix == ".ort"]
    assert main(["info", str(written)]) == 0
    assert "pixels uint8" in capsys.readouterr().out
    assert main(["info", str(written), "--mobile"]) == 2
    err = capsys.readouterr().err
    assert "--mobile checks .onnx files" in err and "model.pixels.onnx" in err and "Traceback" not in err


def test_the_int8_pixel_model_runs_whole_on_nnapi_and_info_says_what_core_ml_needs(cosine, tmp_path, capsys):
    """QDQ with signed per-channel weights at a fixed batch: NNAPI takes every node in one
    partition; Core ML's execution provider has no Quantize/DequantizeLinear, and info says to
    ship the FP32 pixel model there."""
    from anil_edge.export.mobile import mobile_verdicts
    from anil_edge.export.quantize import quantize_int8
    from anil_edge.runtime import Backbone

    folder = tmp_path
    (folder / "model.onnx").write_bytes((cosine[0] / "model.onnx").read_bytes())
    images, _ = glyphs(8, 4)
    quantize_int8(folder / "model.onnx", folder / "model.int8.onnx", Backbone(folder / "model.onnx").preprocess(images))
    written = write_deployment_files(folder / "model.onnx", lambda suffix: folder / f"model.{suffix}", pixels=True,
                                     int8_path=folder / "model.int8.onnx")
    fix_batch(written["backbone_int8_pixels"], 1)
    nnapi = mobile_verdicts(written["backbone_int8_pixels"])[0]
    assert (nnapi.ep, nnapi.partitions, nnapi.supported, nnapi.verdict) == ("NNAPI", 1, nnapi.nodes, "YES")
    assert main(["info", str(folder / "model.int8.onnx"), "--mobile"]) == 0
    out = capsys.readouterr().out
    assert "check of model.int8.pixels.onnx" in out
    assert "CoreML NeuralNetwork, CoreML MLProgram cannot run INT8 (QDQ) graphs: with them ship model.pixels.onnx" in out
