"""Checkpoint -> ONNX FP32 / INT8 / TorchScript on a small model trained in the test."""

from __future__ import annotations

import os

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("learn2learn")
pytest.importorskip("onnxruntime")

from anil_edge.data.splits import split_by_group
from anil_edge.data.tasks import fixed_tasks
from anil_edge.errors import InputError, ModelError
from anil_edge.export.parity import DeployedEmbeddings, compare
from anil_edge.export.pipeline import ExportImages, ExportOptions, export_checkpoint
from anil_edge.export.torchscript_export import read_torchscript_metadata
from anil_edge.export.trained import load_trained
from anil_edge.runtime.adaptation import Adaptation
from anil_edge.runtime.backbone import Backbone
from anil_edge.runtime.metadata_props import metadata_to_props
from anil_edge.runtime.preprocess import to_input
from anil_edge.train.batches import BatchMaker
from anil_edge.train.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from anil_edge.train.evaluate import embed_images, predict_tasks
from anil_edge.train.trainer import train
from tests.train.helpers import tiny_config

from ..tolerances import HEAD_TERMS, assert_f32_close
from ..train.helpers import glyph_set


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    split = split_by_group(glyph_set(n_classes=30, per_class=6, n_groups=6), validation=0.2, test=0.2, seed=0)
    config = tiny_config(out, norm="batch", hidden=16, blocks=3, iterations=8, ways=4, head_init="prototype")
    result = train(config, split)
    return out / "last.pt", split, result


@pytest.fixture(scope="module")
def exported(trained, tmp_path_factory):
    checkpoint, split, result = trained
    real = to_input(split.train.images[:40], result.preprocessing)
    out = tmp_path_factory.mktemp("export") / "model.onnx"
    return export_checkpoint(checkpoint, out, ExportOptions(int8=True, torchscript=True),
                             ExportImages(real=real, calibration=real))


def test_files_and_every_check(exported):
    assert exported.onnx.is_file() and exported.int8.is_file() and exported.torchscript.is_file()
    assert sorted(os.listdir(exported.onnx.parent)) == [
        "model.head_adapt.onnx", "model.head_classify.onnx", "model.int8.onnx", "model.int8.pixels.onnx", "model.json",
        "model.onnx", "model.pixels.onnx", "model.preprocess.onnx", "model.ts"]
    sidecar = __import__("json").loads((exported.onnx.parent / "model.json").read_text())
    for kind, entry in sidecar["files"].items():  # the sidecar names every file with its hash
        data = (exported.onnx.parent / entry["path"]).read_bytes()
        assert __import__("hashlib").sha256(data).hexdigest() == entry["sha256"], kind
    assert sidecar["metadata"]["backbone_sha256"] == Backbone(exported.onnx).sha256
    whats = [c.what for c in exported.report.comparisons]
    for runner in ("onnxruntime", "torchscript"):
        for kind in ("random", "real"):
            for batch in (1, 7, 64):
                assert f"{runner} vs pytorch, {kind} images, batch {batch}" in whats
    assert not exported.report.failures and all(1e-4 <= c.tolerance and c.ok for c in exported.report.comparisons)


def result_config(checkpoint):
    return load_trained(checkpoint).config


def test_metadata_round_trip(trained, exported):
    checkpoint, _, result = trained
    meta = Backbone(exported.onnx, device="cpu").metadata
    payload = load_checkpoint(checkpoint)
    assert meta.preprocessing == result.preprocessing
    assert meta.adaptation == Adaptation(adaptation_lr=0.5, adaptation_steps=5, head_init="prototype")
    assert (meta.training.ways, meta.training.shots) == (4, 1)
    assert meta.training.data == result_config(checkpoint).provenance()
    np.testing.assert_array_equal(meta.learned_head.weight, payload["model"]["head.weight"].numpy())
    assert meta.embedding_dim == result.model.embedding_dim
    _, ts_meta = read_torchscript_metadata(exported.torchscript)
    assert metadata_to_props(ts_meta) == metadata_to_props(meta)


def test_int8_model_is_self_describing_and_close(trained, exported):
    _, split, result = trained
    fp32, int8 = Backbone(exported.onnx, device="cpu"), Backbone(exported.int8, device="cpu")
    assert int8.metadata.extra["precision"] == "int8"
    assert int8.metadata.extra["fp32_backbone_sha256"] == fp32.metadata.backbone_sha256
    assert int8.metadata.backbone_sha256 != fp32.metadata.backbone_sha256
    a, b = fp32.embed(split.test.images), int8.embed(split.test.images)
    cosine = (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
    assert np.median(cosine) > 0.99
    assert exported.int8_check is not None and exported.int8_check.median_cosine >= 0.99


def test_the_int8_model_cannot_saturate_on_any_cpu(exported):
    """uint8 activations x int8 weights in a 7-bit range: the largest pair a u8s8 kernel adds
    into int16 (AVX2's vpmaddubsw) is 2 * 255 * 64 = 32640 <= 32767, so no CPU's kernels
    saturate; the graph itself is checked, not the CPU the test runs on."""
    import onnx

    from anil_edge.export.quantize import int8_weights

    weights = int8_weights(onnx.load(str(exported.int8)))
    assert len(weights) >= 3 and max(int(np.abs(w.astype(np.int64)).max()) for w in weights) <= 64
    q = Backbone(exported.int8).metadata.extra["quantization"]
    assert q["format"] == "u8s8-reduced" and q["avx2_saturation_free"] and q["widest_pair_sum"] <= 32767


def test_an_int8_pixel_model_for_every_language(exported, trained):
    """model.int8.pixels.onnx takes raw uint8 pixels, computes what the INT8 backbone does on
    the runtime's preprocessing, and the sidecar lists it with the INT8 model's own thresholds."""
    import json

    import onnxruntime as ort

    _, split, _ = trained
    sidecar = json.loads((exported.onnx.parent / "model.json").read_text())
    entry = sidecar["files"]["backbone_int8_pixels"]
    assert entry["path"] == "model.int8.pixels.onnx" and entry["inputs"]["pixels"][0] == "uint8"
    assert entry["quantization"]["format"] == "u8s8-reduced" and "open_set" in entry
    assert sidecar["files"]["backbone_int8"]["path"] == "model.int8.onnx"
    session = ort.InferenceSession(str(exported.onnx.parent / entry["path"]), providers=["CPUExecutionProvider"])
    pixels = split.test.images[:6]
    want, got = Backbone(exported.int8).embed(pixels), session.run(None, {"pixels": pixels})[0]
    # one input may round to the neighbouring quantum through the graph's preprocessing: cosines
    cosine = (got * want).sum(1) / np.linalg.norm(got, axis=1) / np.linalg.norm(want, axis=1)
    assert cosine.min() >= 0.999


def test_the_int8_model_enrolls_through_the_head_graphs(exported, trained):
    """engine="onnx" with model.int8.onnx uses the head graphs beside model.onnx (the INT8
    embeddings feed the same graphs) and answers as the numpy engine does."""
    from anil_edge.runtime import FewShotClassifier

    _, split, _ = trained
    backbone = Backbone(exported.int8)
    by_graph, by_numpy = FewShotClassifier(backbone, engine="onnx"), FewShotClassifier(backbone)
    for c in range(3):
        images = split.test.images[split.test.labels == c][:2]
        by_graph.enroll(f"c{c}", images)
        by_numpy.enroll(f"c{c}", images)
    queries = split.test.images[:8]
    assert [p.label for p in by_graph.predict(queries)] == [p.label for p in by_numpy.predict(queries)]
    assert_f32_close(by_graph.predict_proba(queries), by_numpy.predict_proba(queries), terms=HEAD_TERMS, scale=1.0)


def test_the_sidecar_describes_a_fixed_batch_exactly(trained, tmp_path):
    """--fixed-batch 1: model.json declares the pixel models' input as the files take it."""
    import json

    import onnx

    checkpoint, split, result = trained
    real = to_input(split.train.images[:40], result.preprocessing)
    done = export_checkpoint(checkpoint, tmp_path / "model.onnx", ExportOptions(int8=True, fixed_batch=1),
                             ExportImages(real=real, calibration=real))
    files = json.loads((tmp_path / "model.json").read_text())["files"]
    for kind in ("backbone_pixels", "backbone_int8_pixels"):
        declared = files[kind]["inputs"]["pixels"][1]
        dims = onnx.load(str(done.deployment[kind])).graph.input[0].type.tensor_type.shape.dim
        assert declared == [1, 28, 28, 1] == [d.dim_value for d in dims], kind
    assert files["backbone"]["inputs"]["images"][1][0] == "N"  # the float models keep a dynamic batch


def test_a_head_graph_of_another_export_is_refused(exported, tmp_path):
    """engine="onnx" loads the backbone and graphs model.json lists, or refuses in one line."""
    import shutil

    from anil_edge.runtime import FewShotClassifier

    folder = tmp_path / "export"
    shutil.copytree(exported.onnx.parent, folder)
    FewShotClassifier(Backbone(folder / "model.int8.onnx"), engine="onnx")  # the set as exported
    graph = folder / "model.head_classify.onnx"
    graph.write_bytes(graph.read_bytes() + b"\0")
    with pytest.raises(ModelError, match="not the ones it lists: model.head_classify.onnx"):
        FewShotClassifier(Backbone(folder / "model.onnx"), engine="onnx")


KILLED_EXPORT = """
import os, signal, sys
from anil_edge.runtime import file_set
from anil_edge.export.pipeline import ExportImages, ExportOptions, export_checkpoint
roll_forward, real_replace = file_set._roll_forward, os.replace
def kill_after_two_renames(*args):
    count = [0]
    def replace(*a):
        count[0] += 1
        if count[0] == 3:
            os.kill(os.getpid(), signal.SIGKILL)
        real_replace(*a)
    os.replace = replace
    roll_forward(*args)
file_set._roll_forward = kill_after_two_renames
export_checkpoint(sys.argv[1], sys.argv[2], ExportOptions(pixel_input=False))
"""


def test_an_export_killed_mid_commit_is_completed_by_the_first_reader(trained, exported, tmp_path):
    """SIGKILL between the renames of a real export over an earlier one (with INT8, pixel and
    TorchScript files): the runtime, opening the model, finds the new set complete and listed."""
    import hashlib
    import json
    import shutil
    import subprocess
    import sys

    from anil_edge.runtime import FewShotClassifier

    folder = tmp_path / "export"
    shutil.copytree(exported.onnx.parent, folder)
    killed = subprocess.run([sys.executable, "-c", KILLED_EXPORT, str(trained[0]), str(folder / "model.onnx")],
                            capture_output=True, text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert killed.returncode == -9, killed.stderr[-2000:]
    assert list(folder.glob(".anil-edge-export-*/COMMIT.json"))  # the commit was cut off half way
    FewShotClassifier(Backbone(folder / "model.onnx"), engine="onnx")
    files = json.loads((folder / "model.json").read_text())["files"]
    assert sorted(["model.json", *(entry["path"] for entry in files.values())]) == sorted(
        p.name for p in folder.iterdir() if not p.name.startswith("."))  # the earlier INT8, pixel, .ts files went
    for entry in files.values():
        assert hashlib.sha256((folder / entry["path"]).read_bytes()).hexdigest() == entry["sha256"], entry["path"]
    assert not list(folder.glob(".anil-edge-export-*/COMMIT.json"))


def test_a_re_export_leaves_one_exports_files(trained, tmp_path):
    """Re-exporting without --int8/--torchscript into a folder that holds an earlier export
    removes that export's INT8, pixel and TorchScript files; abandoned staging folders of
    killed exports go too (a dead process's, and an old one without a pid)."""
    import json

    checkpoint, split, result = trained
    real = to_input(split.train.images[:40], result.preprocessing)
    export_checkpoint(checkpoint, tmp_path / "model.onnx", ExportOptions(int8=True, torchscript=True),
                      ExportImages(real=real, calibration=real))
    dead = tmp_path / ".anil-edge-export-999999999-abc"
    legacy = tmp_path / ".anil-edge-export-oldone"
    for folder in (dead, legacy):
        folder.mkdir()
        (folder / "model.onnx").write_bytes(b"half")
    os.utime(legacy, (0, 0))
    export_checkpoint(checkpoint, tmp_path / "model.onnx", ExportOptions(pixel_input=False), ExportImages(real=real))
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "model.head_adapt.onnx", "model.head_classify.onnx", "model.json", "model.onnx"]
    assert set(json.loads((tmp_path / "model.json").read_text())["files"]) == {"backbone", "head_adapt", "head_classify"}


def test_an_int8_model_that_disagrees_with_fp32_is_not_shipped_and_fp32_still_is(trained, tmp_path, monkeypatch):
    from anil_edge.export import int8_check

    checkpoint, split, result = trained
    real = to_input(split.train.images[:40], result.preprocessing)
    (tmp_path / "model.int8.onnx").write_bytes(b"an earlier export's INT8 model")  # would not match the new FP32
    monkeypatch.setattr(int8_check, "compare_int8", lambda *a, **k: int8_check.Int8Report(40, 0.945, 0.6, 0.8))
    done = export_checkpoint(checkpoint, tmp_path / "model.onnx", ExportOptions(int8=True),
                             ExportImages(real=real, calibration=real))
    assert done.int8 is None and done.int8_check is None
    assert "median embedding cosine to FP32 0.9450 < 0.99; 1st-percentile embedding cosine 0.6000 < 0.95; " \
           "nearest-class-mean agreement" in done.int8_refused
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "model.head_adapt.onnx", "model.head_classify.onnx", "model.json", "model.onnx", "model.pixels.onnx",
        "model.preprocess.onnx"]
    Backbone(tmp_path / "model.onnx")  # the FP32 model is whole and checked against its sidecar


def test_deployed_accuracy_equals_pytorch(trained, exported):
    """ONNX + numpy head steps reproduce the PyTorch meta-test predictions (FP32)."""
    _, split, result = trained
    tasks = fixed_tasks(split.test, ways=4, shots=1, queries=4, tasks=100, seed=3)
    maker = BatchMaker(split.test, result.preprocessing, torch.device("cpu"))
    inner = Adaptation(0.5, 5, "prototype")
    torch_preds = predict_tasks(result.model, embed_images(result.model, maker), tasks, inner, 4)
    deployed = DeployedEmbeddings(exported.onnx, split.test.images).predict(tasks, 4)
    report = compare(torch_preds, deployed, tasks.query_labels)
    assert report.identical >= 0.99
    assert abs(report.deployed_accuracy - report.torch_accuracy) <= 0.002


def test_bad_checkpoints(trained, tmp_path):
    checkpoint, _, _ = trained
    with pytest.raises(CheckpointError, match="not found"):
        export_checkpoint(tmp_path / "none.pt", tmp_path / "m.onnx")
    data = checkpoint.read_bytes()
    (tmp_path / "cut.pt").write_bytes(data[: len(data) // 3])
    with pytest.raises(CheckpointError, match="cut.pt"):
        export_checkpoint(tmp_path / "cut.pt", tmp_path / "m.onnx")
    payload = load_checkpoint(checkpoint)
    payload["config"] = {**payload["config"], "hidden": 32}  # says one architecture, holds another
    save_checkpoint(tmp_path / "other.pt", {k: v for k, v in payload.items() if k not in ("format", "version")})
    with pytest.raises(ModelError, match="do not fit the conv4 .*wrong shape: backbone.features.features.0.conv.weight"):
        export_checkpoint(tmp_path / "other.pt", tmp_path / "m.onnx")
    payload = load_checkpoint(checkpoint)
    payload["preprocessing"] = {**payload["preprocessing"], "channels": "1", "invert": 1}  # read as strictly as metadata
    save_checkpoint(tmp_path / "prep.pt", {k: v for k, v in payload.items() if k not in ("format", "version")})
    with pytest.raises(CheckpointError, match="(?s)2 problems:.*preprocessing.channels must be an integer.*"
                                              "preprocessing.invert must be a bool"):
        export_checkpoint(tmp_path / "prep.pt", tmp_path / "m.onnx")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cut.pt", "other.pt", "prep.pt"]


def test_bad_options_leave_nothing_behind(trained, tmp_path, monkeypatch):
    checkpoint, _, _ = trained
    with pytest.raises(InputError, match="unsupported opset 11"):
        export_checkpoint(checkpoint, tmp_path / "m.onnx", ExportOptions(opset=11))
    with pytest.raises(ModelError, match="does not exist"):
        export_checkpoint(checkpoint, tmp_path / "no" / "m.onnx")
    import anil_edge.export.pipeline as pipeline

    def failing(*args, **kwargs):
        from anil_edge.export.validate import Comparison, ValidationReport

        return ValidationReport((Comparison("onnxruntime vs pytorch, planted", 1.0, 1e-4),))

    monkeypatch.setattr(pipeline, "validate_export", failing)
    with pytest.raises(ModelError, match="1 of 1 checks failed: onnxruntime vs pytorch, planted"):
        export_checkpoint(checkpoint, tmp_path / "m.onnx", ExportOptions(torchscript=True))
    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write to read-only folders")
def test_unwritable_folder(trained, tmp_path):
    checkpoint, _, _ = trained
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    with pytest.raises(ModelError, match="cannot write"):
        export_checkpoint(checkpoint, locked / "m.onnx")


def test_loaded_model_is_the_trained_one(trained):
    checkpoint, _, result = trained
    loaded = load_trained(checkpoint)
    for k, v in result.model.state_dict().items():
        torch.testing.assert_close(loaded.model.state_dict()[k], v, rtol=0, atol=0)
    assert not loaded.model.training


def test_a_cosine_embedding_model_trained_with_stroke_augmentation_exports_and_agrees(tmp_path):
    """The normalisation and its learned scale are part of the exported graph (ONNX and
    TorchScript agree with PyTorch), so the runtime's head sees the scaled unit vectors."""
    split = split_by_group(glyph_set(n_classes=30, per_class=6, n_groups=6), validation=0.2, test=0.2, seed=0)
    config = tiny_config(tmp_path / "run", hidden=16, blocks=3, iterations=4, ways=4, embedding="cosine",
                         stroke_augment=True)
    result = train(config, split)
    real = to_input(split.train.images[:40], result.preprocessing)
    done = export_checkpoint(tmp_path / "run" / "last.pt", tmp_path / "model.onnx", ExportOptions(int8=False, torchscript=True),
                             ExportImages(real=real, calibration=real))
    assert not done.report.failures
    scale = float(result.model.backbone.log_scale.detach().exp())
    E = Backbone(done.onnx).embed(split.test.images[:10])
    np.testing.assert_allclose(np.linalg.norm(E, axis=1), scale, rtol=1e-5)


def test_the_int8_model_says_where_it_is_exact_and_fast_and_auto_follows_it(exported, monkeypatch):
    """The export times INT8 against FP32 on its own CPU and records the CPU classes; the runtime's
    precision='auto' loads the file those say, on each faked CPU class."""
    import anil_edge.runtime.backbone as backbone_module
    from anil_edge.cpu_features import cpu_class

    q = Backbone(exported.int8).metadata.extra["quantization"]
    assert q["measured"]["cpu_class"] == cpu_class() and q["measured"]["fp32_ms"] > 0 and q["measured"]["int8_ms"] > 0
    assert q["exact_on"] and set(q["faster_on"]) <= set(q["exact_on"]) | {"x86-avx2", "other"}
    assert (q["measured"]["fp32_ms"] / q["measured"]["int8_ms"] >= 1.1) == (cpu_class() in q["faster_on"])
    sidecar = __import__("json").loads((exported.onnx.parent / "model.json").read_text())
    assert sidecar["files"]["backbone_int8"]["quantization"] == q
    for cls in ("x86-amx", "arm64"):
        monkeypatch.setattr(backbone_module, "cpu_class", lambda cls=cls: cls)
        loaded = Backbone(exported.onnx, precision="auto")
        expected = exported.int8 if cls in q["faster_on"] and cls in q["exact_on"] else exported.onnx
        assert loaded.path == expected and loaded.sha256 == Backbone(expected).sha256, loaded.choice.summary()
