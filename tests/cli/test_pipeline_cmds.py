"""export / info / enroll / predict / evaluate through the real command line."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("torch")
pytest.importorskip("learn2learn")
pytest.importorskip("onnxruntime")

from tests.cli.helpers import TINY

from ..train.helpers import write_folder
from .helpers import anil_edge


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("pipeline")
    data = write_folder(root / "data", {f"class{c:02d}": 5 for c in range(16)})
    result = anil_edge("train", *TINY, "--data", data, "--iterations", "4", "--out-dir", root / "run",
                       "--norm", "batch", "--head-init", "prototype")
    assert result.returncode == 0, result.stderr
    (root / "train.stdout").write_text(result.stdout)
    export = anil_edge("export", root / "run" / "best.pt", "--int8", "--torchscript", "--calibration-images", "32")
    assert export.returncode == 0, export.stderr
    return root, export.stdout


def test_export_writes_validated_files(run):
    root, stdout = run
    assert "validated: 12 comparisons with PyTorch" in stdout
    assert "INT8 vs FP32 on " in stdout and "(format u8s8-reduced)" in stdout
    for name in ("model.onnx", "model.int8.onnx", "model.int8.pixels.onnx", "model.ts"):
        assert (root / "run" / name).is_file() and f"wrote {root / 'run' / name}" in stdout


def test_info_names_the_int8_format_and_whether_it_pays_here(run):
    root, _ = run
    result = anil_edge("info", root / "run" / "model.int8.onnx")
    assert result.returncode == 0, result.stderr
    assert "int8, format u8s8-reduced: uint8 activations x int8, 7-bit range weights" in result.stdout
    assert "no CPU's kernels saturate" in result.stdout and "this CPU" in result.stdout


def test_the_chosen_speed_options_are_said_in_one_line(run):
    root, _ = run
    lines = [line for line in (root / "train.stdout").read_text().splitlines() if line.startswith("auto: ")]
    assert len(lines) == 1 and " s/it" in lines[0]


@pytest.mark.parametrize("model", ["model.onnx", "model.ts"])
def test_info(run, model):
    root, _ = run
    result = anil_edge("info", root / "run" / model)
    assert result.returncode == 0, result.stderr
    assert "embedding  " in result.stdout and "head" in result.stdout and "prototype" in result.stdout
    doc = json.loads(anil_edge("info", root / "run" / model, "--json").stdout)
    assert doc["training"]["ways"] == 3 and doc["adaptation"]["head_init"] == "prototype"
    if model == "model.ts":  # no ONNX to check: one line, not onnxruntime's INVALID_PROTOBUF traceback
        mobile = anil_edge("info", root / "run" / model, "--mobile")
        assert mobile.returncode == 2 and "--mobile checks .onnx files" in mobile.stderr
        assert "Traceback" not in mobile.stderr and "model.onnx exported beside it" in mobile.stderr


def test_enroll_extend_remove_predict(run, tmp_path):
    root, _ = run
    model, state = root / "run" / "model.onnx", tmp_path / "state.npz"
    shop = write_folder(tmp_path / "shop", {"apple": 2, "pear": 2})
    more = write_folder(tmp_path / "more", {"plum": 2})
    first = anil_edge("enroll", model, shop, "--state", state)
    assert first.returncode == 0, first.stderr
    assert "2 classes in" in first.stdout
    assert "3 classes in" in anil_edge("enroll", model, more, "--state", state, "--extend").stdout
    assert "2 classes in" in anil_edge("enroll", model, "--state", state, "--remove", "pear").stdout
    result = anil_edge("predict", model, state, tmp_path / "shop" / "apple", "--json")
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(rows) == 2 and {r["best_label"] for r in rows} <= {"apple", "plum"}
    table = anil_edge("predict", model, state, tmp_path / "more", "--threshold", "1.0")
    assert "unknown" in table.stdout and table.stdout.startswith("image")


@pytest.mark.parametrize("model", ["best.pt", "model.onnx"])
def test_evaluate(run, model):
    root, _ = run
    result = anil_edge("evaluate", root / "run" / model, "--ways", "3", "--queries", "3", "--tasks", "20", "--json")
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["tasks"] == 20 and 0 <= doc["accuracy"] <= 1 and doc["ci95"] >= 0


@pytest.mark.parametrize("args,message", [
    (["export", "/no/such.pt"], "checkpoint not found"),
    (["export", "{ckpt}", "--opset", "9"], "unsupported opset 9"),
    (["export", "{ckpt}", "--out", "/no/such/dir/m.onnx"], "does not exist"),
    (["info", "/no/such.onnx"], "/no/such.onnx"),
    (["enroll", "{model}", "/no/such/folder", "--state", "{tmp}/s.npz"], "no such folder"),
    (["enroll", "{model}", "{empty}", "--state", "{tmp}/s.npz"], "class folder(s) with no images: nothing"),
    (["predict", "{model}", "{tmp}/none.npz", "{tmp}"], "none.npz"),
    (["evaluate", "{ckpt}", "--ways", "99", "--tasks", "5"], "99-way tasks need 99 classes"),
])
def test_user_errors(run, tmp_path, args, message):
    root, _ = run
    (tmp_path / "empty" / "nothing").mkdir(parents=True)
    (tmp_path / "x.png").write_bytes(b"")
    fill = {"ckpt": root / "run" / "best.pt", "model": root / "run" / "model.onnx", "tmp": tmp_path,
            "empty": tmp_path / "empty"}
    result = anil_edge(*[a.format(**fill) for a in args])
    assert result.returncode == 2, result.stdout
    assert message in result.stderr and "Traceback" not in result.stderr, result.stderr


def test_the_exported_model_records_its_data_relative_to_itself(run):
    """No absolute local path ships in a model; evaluate finds the data from the model's folder."""
    from anil_edge.runtime.backbone import read_metadata

    root, _ = run
    sources = read_metadata(root / "run" / "model.onnx").training.data.sources
    assert sources == ("../data",)
    assert json.loads((root / "run" / "model.json").read_text())["metadata"]["training"]["data"]["sources"] == ["../data"]


def test_an_int8_refusal_still_writes_fp32_and_exits_2_naming_what_to_try(run, tmp_path, monkeypatch, capsys):
    from anil_edge.cli.main import main
    from anil_edge.export import int8_check

    root, _ = run
    monkeypatch.setattr(int8_check, "compare_int8", lambda *a, **k: int8_check.Int8Report(32, 0.9893, 0.96, None))
    code = main(["export", str(root / "run" / "best.pt"), "--int8", "--calibration-images", "32",
                 "--out", str(tmp_path / "model.onnx")])
    err = capsys.readouterr().err
    assert code == 2 and (tmp_path / "model.onnx").is_file() and not (tmp_path / "model.int8.onnx").exists()
    assert "median embedding cosine to FP32 0.9893 < 0.99" in err and "FP32 ships" in err
    assert "not tried: --int8-format u8s8 (8-bit signed weights" in err  # auto tried u8s8-reduced and u8u8
