"""The export's within-class whitening (anil_edge/export/whitening.py): the map against the
Mahalanobis distance it stands for, the calibration on constructed embeddings (it ships where a
nuisance spread shared by every class hides the class, and not where the within-class spread is
already isotropic), and the export wiring: the ONNX model computes the map, records it, and a
learned head is refused on it."""

from __future__ import annotations

import numpy as np
import pytest

from anil_edge.data.image_set import ImageSet
from anil_edge.errors import InputError
from anil_edge.export.whitening import SHRINKAGES, Whitening, calibrate_whitening, fit_sample, fit_whitening
from anil_edge.runtime.whitening import WhiteningCalibration
from tests.synthetic import nuisance_embeddings


def test_the_map_is_the_mahalanobis_distance_of_the_shrunk_pooled_covariance():
    E, data = nuisance_embeddings(2.0, classes=30, seed=1)
    w = fit_whitening(E, data.labels, shrinkage=0.3)
    pooled = sum(np.cov(E[data.labels == c].T, bias=True) * (data.labels == c).sum() for c in range(30)) / E.shape[0]
    cov = pooled + 0.3 * np.trace(pooled) / 16 * np.eye(16)
    x, y = E[0].astype(np.float64), E[7].astype(np.float64)
    d = (x - y) @ w.matrix.astype(np.float64)
    np.testing.assert_allclose(d @ d, (x - y) @ np.linalg.solve(cov, x - y), rtol=1e-4)
    out = w.apply(E)
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), np.mean(np.linalg.norm(E, axis=1)), rtol=1e-5)


@pytest.mark.parametrize("nuisance, ships", [(0.5, False), (2.0, True)])
def test_calibration_ships_the_whitening_only_where_it_beats_the_plain_embedding(nuisance, ships):
    fit, fit_data = nuisance_embeddings(nuisance, classes=60, seed=1)
    E, data = nuisance_embeddings(nuisance, classes=40, seed=2)
    whitening, record = calibrate_whitening(fit, fit_data.labels, E, data, episodes=100)
    assert record.pays is ships and record.shrinkage in SHRINKAGES and record.candidates == len(SHRINKAGES)
    assert (record.fit_images, record.fit_classes) == (360, 60)
    if ships:  # every protocol gains, and the measured gain clears its own 95% interval
        assert record.worst_protocol_gain >= 0 and record.gain > record.gain_ci95 > 0
        assert record.summary().endswith(": applied")
    else:
        assert "not applied" in record.summary()


def test_a_record_with_impossible_values_is_refused_with_every_field_named():
    with pytest.raises(InputError) as err:
        WhiteningCalibration(0, 3, ("5-way 1-shot",), 10, -1.0, 4, 1.5, 0.5, 0.01, 0.0)
    message = str(err.value)
    assert "plain_accuracy must lie in [0, 1], found 1.5" in message
    assert "shrinkage must be a finite number >= 0, found -1.0" in message
    assert "fit_images, fit_classes, episodes, candidates and protocols must be >= 1, found 0, 3" in message


def test_a_gain_that_costs_one_protocol_does_not_ship():
    record = WhiteningCalibration(100, 10, ("5-way 1-shot", "20-way 1-shot"), 200, 1.0, 4, 0.80, 0.83, 0.01, -0.004)
    assert record.gain > record.gain_ci95 and not record.pays
    assert record.summary().endswith("not applied (a protocol loses)")


def test_fit_sample_takes_whole_classes_of_two_or_more_images_up_to_the_limit():
    labels = np.array([0, 1, 1, 2, 2, 2, 3, 3, 3, 3])
    data = ImageSet(np.zeros((10, 1, 1, 1), np.uint8), labels, ("a", "b", "c", "d"), ("g",) * 4)
    sample = fit_sample(data, limit=7)
    sizes = sample.class_sizes()
    assert sizes.sum() <= 7 and set(sample.class_names) <= {"b", "c", "d"} and (sizes >= 2).all()
    assert sorted(fit_sample(data, limit=100).class_names) == ["b", "c", "d"]


torch = pytest.importorskip("torch")
pytest.importorskip("learn2learn")
pytest.importorskip("onnxruntime")


def test_an_export_that_ships_the_whitening_computes_and_records_it(tmp_path, monkeypatch):
    from anil_edge.data.splits import split_by_group
    from anil_edge.export import pipeline
    from anil_edge.export.pipeline import ExportImages, ExportOptions, export_checkpoint
    from anil_edge.export.trained import load_trained
    from anil_edge.runtime import FewShotClassifier
    from anil_edge.runtime.backbone import Backbone
    from anil_edge.runtime.preprocess import to_input
    from anil_edge.train.trainer import train
    from tests.train.helpers import glyph_set, tiny_config

    split = split_by_group(glyph_set(n_classes=30, per_class=6, n_groups=6), validation=0.2, test=0.2, seed=0)
    train(tiny_config(tmp_path / "run", norm="batch", hidden=16, blocks=3, iterations=2, ways=4,
                      head_init="prototype"), split)
    trained = load_trained(tmp_path / "run" / "last.pt")
    D = trained.model.backbone.embedding_dim
    rng = np.random.default_rng(0)
    q = np.linalg.qr(rng.normal(size=(D, D)))[0]
    chosen = Whitening(rng.normal(size=D).astype(np.float32), (q * rng.uniform(0.5, 2, D) @ q.T).astype(np.float32), 3.0)
    record = WhiteningCalibration(36, 6, ("5-way 1-shot within group",), 10, 1.0, 4, 0.5, 0.6, 0.01, 0.02)
    monkeypatch.setattr(pipeline, "calibrate_whitening", lambda *args: (chosen, record))
    real = to_input(split.train.images[:16], trained.preprocessing)
    result = export_checkpoint(trained, tmp_path / "model.onnx", ExportOptions(int8=True), ExportImages(
        real=real, calibration=real, validation=split.validation, training=fit_sample(split.train)))
    assert result.whitening == record and Backbone(result.onnx).metadata.whitening == record
    int8 = Backbone(result.int8).metadata  # quantized before the map, which it ends with in float
    assert int8.whitening == record and int8.extra["fp32_backbone_sha256"] == Backbone(result.onnx).sha256
    assert int8.extra["quantization"]["checked_before"] == "whitening" and result.int8_check.checked_before_whitening
    with torch.no_grad():
        plain = trained.model.backbone.eval()(torch.as_tensor(real)).numpy()
    np.testing.assert_allclose(Backbone(result.onnx).embed(split.train.images[:16]), chosen.apply(plain),
                               rtol=1e-4, atol=1e-4 * 3.0)
    with pytest.raises(InputError, match="head_init 'learned' cannot run on this model"):
        FewShotClassifier(Backbone(result.onnx), head_init="learned")

    from anil_edge.export import int8_check  # an INT8 model whose decisions change after the map is not shipped

    reports = iter([int8_check.Int8Report(16, 1.0, 1.0, 1.0), int8_check.Int8Report(16, 1.0, 1.0, 0.5)])
    monkeypatch.setattr(int8_check, "compare_int8", lambda *args, **kwargs: next(reports))  # before the map, after
    again = export_checkpoint(trained, tmp_path / "again.onnx", ExportOptions(int8=True), ExportImages(
        real=real, calibration=real, validation=split.validation, training=fit_sample(split.train)))
    assert again.int8 is None and "after the whitening its nearest-class-mean agreement with FP32 is 50.0% < 95%" \
        in again.int8_refused


def test_the_map_appended_to_an_onnx_graph_is_the_numpy_map():
    import onnxruntime as ort
    from onnx import TensorProto, helper

    from anil_edge.export.onnx_export import OUTPUT_NAME
    from anil_edge.export.whitening import append_to_graph

    E, data = nuisance_embeddings(2.0, classes=20, seed=3)
    w = fit_whitening(E, data.labels, shrinkage=0.1)
    graph = helper.make_graph([helper.make_node("Identity", ["x"], [OUTPUT_NAME])], "plain",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 16])],
                              [helper.make_tensor_value_info(OUTPUT_NAME, TensorProto.FLOAT, ["N", 16])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    append_to_graph(model, w)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    out = session.run(None, {"x": E})[0]
    np.testing.assert_allclose(out, w.apply(E), rtol=1e-5, atol=1e-5 * w.scale)
