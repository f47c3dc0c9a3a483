"""Images of every accepted kind become the same normalised batch; bad images get clear errors."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from anil_edge.errors import InputError, UnreadableImagesError
from anil_edge.runtime.metadata import Preprocessing
from anil_edge.runtime.preprocess import to_input
from tests.helpers import GRAY

RGB = Preprocessing(input_size=(8, 6), channels=3, mean=(0.5, 0.4, 0.3), std=(0.2, 0.25, 0.5))


def test_gray_layouts_agree_and_are_inverted_then_normalised():
    rng = np.random.default_rng(0)
    imgs = rng.integers(0, 256, (3, 28, 28), dtype=np.uint8)
    expected = ((1 - imgs[:, None].astype(np.float32) / 255) - 0.1) / 0.5
    for given in (imgs, imgs[..., None], list(imgs), [i[..., None] for i in imgs], imgs.astype(np.float32)[:, None] / 255):
        np.testing.assert_allclose(to_input(given, GRAY), expected, atol=1e-6)
    np.testing.assert_allclose(to_input(imgs[0], GRAY), expected[:1], atol=1e-6)
    assert to_input(imgs, GRAY).dtype == np.float32 and to_input(imgs, GRAY).flags.c_contiguous


def test_rgb_layouts_and_per_channel_normalisation():
    rng = np.random.default_rng(1)
    hwc = rng.integers(0, 256, (2, 8, 6, 3), dtype=np.uint8)
    mean, std = np.array(RGB.mean).reshape(1, 3, 1, 1), np.array(RGB.std).reshape(1, 3, 1, 1)
    expected = (hwc.transpose(0, 3, 1, 2) / 255 - mean) / std
    np.testing.assert_allclose(to_input(hwc, RGB), expected, atol=1e-5)
    np.testing.assert_allclose(to_input(hwc[1], RGB), expected[1:], atol=1e-5)
    np.testing.assert_allclose(to_input(hwc.transpose(0, 3, 1, 2) / 255.0, RGB), expected, atol=1e-5)


def test_paths_and_pil_images_are_converted_and_resized(tmp_path):
    rng = np.random.default_rng(2)
    big = Image.fromarray(rng.integers(0, 256, (105, 105, 3), dtype=np.uint8))  # RGB, wrong size
    big.save(tmp_path / "a.png")
    from_path = to_input(tmp_path / "a.png", GRAY)
    from_str = to_input(str(tmp_path / "a.png"), GRAY)
    from_pil = to_input([big, big], GRAY)
    expected = np.asarray(big.convert("L").resize((28, 28), Image.LANCZOS), np.float32) / 255
    assert from_path.shape == (1, 1, 28, 28) and from_pil.shape == (2, 1, 28, 28)
    np.testing.assert_allclose(from_path[0, 0], ((1 - expected) - 0.1) / 0.5, atol=1e-6)
    np.testing.assert_array_equal(from_path, from_str)
    np.testing.assert_array_equal(from_pil[1:], from_path)


@pytest.mark.parametrize(
    "images, message",
    [
        (np.zeros((27, 28), np.uint8), r"size \(H, W\) = \(27, 28\), expected \(28, 28\)"),
        (np.zeros((2, 28, 28, 3), np.uint8), r"3 channel\(s\), expected 1"),
        (np.zeros((1, 3, 28, 28), np.float32), r"3 channel\(s\), expected 1"),
        (np.zeros((2, 2, 28, 28, 1), np.uint8), "must be"),
        (np.full((1, 1, 28, 28), np.nan, np.float32), "NaN or infinite"),
        (np.full((1, 1, 28, 28), np.inf, np.float32), "NaN or infinite"),
        (np.full((1, 1, 28, 28), 255.0, np.float32), r"scaled to \[0, 1\], found values in \[255, 255\]"),
        (np.zeros((1, 28, 28, 1), np.int64), "dtype int64"),
        (np.zeros((0, 28, 28), np.uint8), "empty batch"),
        ([], "no images given"),
        ([np.zeros((2, 28, 28), np.uint8)], "expected one image inside the list"),
        ({"not": "an image"}, "found dict"),
        ("/no/such/image.png", "file not found"),
    ],
)
def test_bad_images_raise_clear_errors(images, message):
    with pytest.raises(InputError, match=message):
        to_input(images, GRAY)


def test_every_unreadable_file_of_a_batch_is_listed_at_once(tmp_path):
    """Three corrupt files among good ones: one error naming all three, with their positions, so
    that a user fixes them in one run (and a caller can skip them)."""
    good = tmp_path / "good.png"
    Image.fromarray(np.zeros((28, 28), np.uint8)).save(good)
    bad = []
    for name in ("a.png", "b.jpg", "c.png"):
        (tmp_path / name).write_bytes(b"\x89PNG not really")
        bad.append(tmp_path / name)
    with pytest.raises(UnreadableImagesError) as caught:
        to_input([good, bad[0], good, bad[1], bad[2]], GRAY)
    assert [i for i, _ in caught.value.failures] == [1, 3, 4]
    assert "3 of 5 images cannot be used" in str(caught.value)
    for path, (_, reason) in zip(bad, caught.value.failures):
        assert reason.startswith(f"{path}: cannot be read as an image")


@pytest.mark.parametrize("mode, key", [("L", 0), ("RGB", (0, 0, 0))])
def test_a_trns_colour_key_is_transparent_like_its_rgba_twin(tmp_path, mode, key):
    """A grayscale or RGB PNG whose background is transparent through a tRNS colour key (no alpha
    channel) is composited on white, as its RGBA twin is and as the other clients decode it."""
    rgba = np.zeros((12, 10, 4), np.uint8)
    rgba[3:9, 2:8] = (200, 120, 40, 255)  # an opaque square; the rest transparent black
    twin = Image.fromarray(rgba, "RGBA")
    twin.save(tmp_path / "twin.png")
    keyed = twin.convert("RGB") if mode == "RGB" else twin.convert("L")
    keyed.save(tmp_path / "keyed.png", transparency=key)
    assert "transparency" in Image.open(tmp_path / "keyed.png").info
    prep = Preprocessing((12, 10), 3 if mode == "RGB" else 1, (0.0,) * (3 if mode == "RGB" else 1),
                         (1.0,) * (3 if mode == "RGB" else 1))
    np.testing.assert_array_equal(to_input(tmp_path / "keyed.png", prep), to_input(tmp_path / "twin.png", prep))


def test_an_image_too_elongated_to_centre_crop_is_refused_before_it_is_resized(tmp_path):
    """A 2 KB PNG of 1,000,000 × 1 pixels: scaling its shorter side to the model's size first would
    have made a gigapixel intermediate."""
    Image.new("L", (1_000_000, 1), 128).save(tmp_path / "strip.png")
    prep = Preprocessing((128, 128), 3, (0.5,) * 3, (0.5,) * 3, resize="bicubic", crop="center", crop_pct=0.875)
    with pytest.raises(InputError, match=r"a 1000000x1 image is too elongated to centre-crop: .* more than 89 MP"):
        to_input(tmp_path / "strip.png", prep)
