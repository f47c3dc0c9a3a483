"""Photos done right, end to end: an RGB folder data set (coloured shapes and textures, images
of other aspect ratios) trains, exports and enrolls; RGB models do not invert, keep the aspect
ratio with a centre crop, and decode identically in training and in the runtime."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("learn2learn")
Image = pytest.importorskip("PIL.Image")

from anil_edge.data.decode import decode
from anil_edge.data.sources import load_split
from anil_edge.export.pipeline import ExportImages, export_checkpoint
from anil_edge.export.trained import load_trained
from anil_edge.runtime import Backbone, FewShotClassifier
from anil_edge.runtime.preprocess import to_input
from anil_edge.train.config import TrainConfig
from anil_edge.train.preprocessing import decode_preprocessing
from anil_edge.train.trainer import train

COLOURS = [(220, 30, 30), (30, 160, 40), (30, 60, 220), (230, 200, 20), (160, 40, 200), (20, 190, 200)]


def _photo(colour, shape: int, rng) -> Image.Image:
    """A 48×36 (landscape) photo: a coloured disc, square or stripes on a noisy light background."""
    h, w = 36, 48
    img = rng.integers(200, 256, (h, w, 3)).astype(np.uint8)
    yy, xx = np.mgrid[0:h, 0:w]
    cy, cx, r = h // 2 + rng.integers(-3, 4), w // 2 + rng.integers(-4, 5), rng.integers(9, 13)
    mask = {0: (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r, 1: (abs(yy - cy) <= r) & (abs(xx - cx) <= r),
            2: ((xx // 4) % 2 == 0) & (abs(yy - cy) <= r)}[shape]
    img[mask] = np.clip(np.array(colour) + rng.integers(-20, 21, 3), 0, 255)
    return Image.fromarray(img)


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    root = tmp_path_factory.mktemp("rgb")
    rng = np.random.default_rng(0)
    for k, colour in enumerate(COLOURS):
        for shape in range(3):
            folder = root / f"group{k}" / f"colour{k}-shape{shape}"
            folder.mkdir(parents=True)
            for i in range(6):
                _photo(colour, shape, rng).save(folder / f"{i}.png")
    return root


def test_rgb_defaults():
    config = TrainConfig(channels=3)
    prep = decode_preprocessing(config)
    assert not prep.invert and prep.crop == "center" and prep.crop_pct == 1.0
    assert decode_preprocessing(TrainConfig()).invert and decode_preprocessing(TrainConfig()).crop == "squash"
    assert TrainConfig(channels=3, normalization="imagenet").normalization == "imagenet"


def test_centre_crop_keeps_the_aspect_ratio(photos):
    prep = decode_preprocessing(TrainConfig(channels=3, input_size=24))
    wide = Image.fromarray(np.concatenate([np.zeros((20, 20, 3), np.uint8), np.full((20, 40, 3), 255, np.uint8),
                                           np.zeros((20, 20, 3), np.uint8)], axis=1))  # black | white | black
    pixels = to_input([wide], prep)[0]  # 80×20 → 96×24, centre 24×24 of the white middle
    assert pixels.min() > 0.99  # squashing would have pulled the black sides in


def test_rgb_folder_trains_exports_and_enrolls(photos, tmp_path):
    config = TrainConfig(dataset="folder", data=(str(photos),), channels=3, input_size=32, ways=3, shots=1, queries=2,
                         hidden=16, blocks=3, meta_batch=4, iterations=12, eval_every=6, eval_tasks=8,
                         checkpoint_every=6, validation_fraction=0.2, test_fraction=0.3, progress=False, threads=1,
                         device="cpu", out_dir=str(tmp_path / "run"))
    split = load_split("folder", config.data, decode_preprocessing(config), validation=0.2, test=0.3, seed=0)
    train(config, split)
    trained = load_trained(tmp_path / "run" / "last.pt")
    real = to_input(split.train.sample_images(16), trained.preprocessing)
    result = export_checkpoint(trained, tmp_path / "rgb.onnx", images=ExportImages(real=real, validation=split.validation))
    backbone = Backbone(result.onnx)
    prep = backbone.metadata.preprocessing
    assert prep.channels == 3 and not prep.invert and prep.crop == "center"
    some_file = next(photos.rglob("*.png"))
    trained_on = decode(some_file, prep, str(some_file))  # how training decoded the file
    expected = Image.open(some_file).convert("RGB").resize((43, 32), Image.Resampling.LANCZOS).crop((5, 0, 37, 32))
    np.testing.assert_array_equal(trained_on, np.asarray(expected))  # 48×36 → 43×32 → centre 32×32
    np.testing.assert_array_equal(backbone.preprocess([str(some_file)]), to_input(trained_on[None], prep))
    clf = FewShotClassifier(backbone)
    support, queries, truth = tmp_path / "enroll", [], []
    for name in split.test.class_names:
        files = sorted((photos / name).glob("*.png"))
        (support / name.replace("/", "_")).mkdir(parents=True)
        Image.open(files[0]).save(support / name.replace("/", "_") / "0.png")
        queries += [str(f) for f in files[1:]]
        truth += [name.replace("/", "_")] * (len(files) - 1)
    clf.enroll_folder(support)
    accuracy = np.mean([p.label == t for p, t in zip(clf.predict(queries), truth)])
    assert accuracy >= 0.6, f"{accuracy=} on {len(split.test.class_names)} RGB classes, 1 shot each"


def test_rotations_are_classes_for_glyphs_but_not_for_photos():
    """A rotated photo of a mug is a mug: RGB data trains without rotation classes by default."""
    assert TrainConfig().uses_rotations and not TrainConfig(channels=3).uses_rotations
    assert TrainConfig(channels=3, rotations=True).uses_rotations and not TrainConfig(rotations=False).uses_rotations
