"""Images to backbone input: file paths, PIL images or numpy arrays, one image or a batch.

Accepted inputs (``H, W`` must equal the model's input size for arrays; files and PIL images
are converted to the model's colour mode and resized with its filter):

- a path (``str`` / ``os.PathLike``) or a PIL image;
- ``uint8`` arrays: ``(H, W)`` or ``(H, W, C)`` for one image, ``(N, H, W, C)`` for a batch
  (and ``(N, H, W)`` for a batch of grayscale images when the model takes 1 channel);
- floating arrays scaled to ``[0, 1]`` (as torchvision's ``ToTensor`` makes them):
  ``(C, H, W)`` for one image, ``(N, C, H, W)`` for a batch;
- a list or tuple of single images of any of these kinds.

The result is float32 ``(N, C, H, W)``: scaled to [0, 1], inverted if the model says so,
then normalised per channel with the model's mean and std.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..errors import InputError, UnreadableImagesError, require
from .metadata import Preprocessing

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")  # what image folders may hold
_PIL_FILTERS = {"nearest": 0, "lanczos": 1, "bilinear": 2, "bicubic": 3}  # PIL.Image.Resampling values


def is_image_name(name: str) -> bool:
    """Whether a file name looks like an image file (by suffix; hidden files are not)."""
    return name.lower().endswith(IMAGE_SUFFIXES) and not os.path.basename(name).startswith(".")


def to_input(images: Any, prep: Preprocessing) -> np.ndarray:
    """Convert ``images`` (see module doc) to the normalised float32 batch (N, C, H, W)."""
    if isinstance(images, (list, tuple)):
        if len(images) == 0:
            raise InputError("no images given: expected at least one image")
        batch = np.stack(decode_all(images, prep))
    elif isinstance(images, np.ndarray):
        batch = _array_batch(images, prep, "images")
    else:
        batch = _one(images, prep, "image")[None]
    if batch.shape[0] == 0:
        raise InputError(f"no images given: found an empty batch of shape {images.shape}")
    return _normalise(batch, prep)


def decode_all(images: Sequence[Any], prep: Preprocessing) -> list[np.ndarray]:
    """Each single image of ``images`` as float32 (C, H, W) in [0, 1]; every image that cannot be
    used is reported at once (:class:`UnreadableImagesError`), not only the first."""
    decoded, failures = decode_each(images, prep)
    if failures:
        raise UnreadableImagesError(failures, len(images))
    return [d for d in decoded if d is not None]


def decode_each(images: Sequence[Any], prep: Preprocessing) -> tuple[list[np.ndarray | None], list[tuple[int, str]]]:
    """Decode every image of ``images``: float32 (C, H, W) in [0, 1], or None where it cannot be
    used, with ``(index, reason)`` for each such image (for callers that skip them)."""
    decoded: list[np.ndarray | None] = []
    failures: list[tuple[int, str]] = []
    for i, image in enumerate(images):
        name = _name(image, i)
        try:
            decoded.append(_one(image, prep, name))
        except InputError as exc:
            decoded.append(None)
            failures.append((i, str(exc) if str(exc).startswith(name) else f"{name}: {exc}"))
    return decoded, failures


def _name(image: Any, index: int) -> str:
    """How an error names an image of a batch: its path, else its position."""
    return os.fspath(image) if isinstance(image, (str, os.PathLike)) else f"image {index}"


def _one(image: Any, prep: Preprocessing, name: str) -> np.ndarray:
    """One image as float32 (C, H, W) in [0, 1]."""
    if isinstance(image, (str, os.PathLike)):
        return _from_pil(_open(image, name), prep)
    if _is_pil(image):
        return _from_pil(image, prep)
    if isinstance(image, np.ndarray):
        batch = _array_batch(image, prep, name)
        if batch.shape[0] != 1:
            raise InputError(f"{name}: expected one image inside the list, found a batch of shape {image.shape}")
        return batch[0]
    raise InputError(
        f"{name}: expected a file path, a PIL image or a numpy array, found {type(image).__name__}"
    )


def _array_batch(array: np.ndarray, prep: Preprocessing, name: str) -> np.ndarray:
    """A uint8 (HW / HWC / NHW / NHWC) or float (CHW / NCHW) array as float32 (N, C, H, W) in [0, 1]."""
    if array.dtype == np.uint8:
        return _uint8_batch(array, prep, name)
    if array.dtype.kind == "f":
        return _float_batch(array, prep, name)
    raise InputError(
        f"{name}: expected uint8 pixels (H, W, C) or float pixels in [0, 1] (C, H, W), found dtype {array.dtype}"
    )


def _uint8_batch(array: np.ndarray, prep: Preprocessing, name: str) -> np.ndarray:
    c = prep.channels
    if array.ndim == 2:
        array = array[None, :, :, None]
    elif array.ndim == 3:
        # (H, W, C) for one image; for 1-channel models also (N, H, W) unless the last axis is 1.
        array = array[..., None] if c == 1 and array.shape[-1] != 1 else array[None]
    elif array.ndim != 4:
        raise InputError(f"{name}: uint8 images must be (H, W), (H, W, C) or (N, H, W, C), found shape {array.shape}")
    _check_geometry(array.shape[1:3], array.shape[3], prep, name, layout="(N, H, W, C)")
    return np.ascontiguousarray(array.transpose(0, 3, 1, 2), dtype=np.float32) * np.float32(1 / 255)


def _float_batch(array: np.ndarray, prep: Preprocessing, name: str) -> np.ndarray:
    if array.ndim == 3:
        array = array[None]
    elif array.ndim != 4:
        raise InputError(f"{name}: float images must be (C, H, W) or (N, C, H, W), found shape {array.shape}")
    _check_geometry(array.shape[2:4], array.shape[1], prep, name, layout="(N, C, H, W)")
    finite = np.isfinite(array)
    if not finite.all():
        raise InputError(f"{name}: pixels must be finite, found {array.size - int(finite.sum())} NaN or infinite value(s)")
    lo, hi = float(array.min()), float(array.max())
    if lo < -1e-3 or hi > 1 + 1e-3:
        raise InputError(
            f"{name}: float pixels must be scaled to [0, 1], found values in [{lo:.4g}, {hi:.4g}] "
            "(pass uint8 arrays for 0..255 pixels; normalisation is applied by the runtime)"
        )
    return array.astype(np.float32, copy=False)


def _check_geometry(size: Sequence[int], channels: int, prep: Preprocessing, name: str, layout: str) -> None:
    problems = []
    if tuple(size) != tuple(prep.input_size):
        problems.append(f"size (H, W) = {tuple(size)}, expected {tuple(prep.input_size)}")
    if channels != prep.channels:
        problems.append(f"{channels} channel(s), expected {prep.channels}")
    if problems:
        raise InputError(
            f"{name} in layout {layout} has " + " and ".join(problems)
            + " (file paths and PIL images are converted and resized automatically)"
        )


def _is_pil(obj: Any) -> bool:
    return type(obj).__module__.startswith("PIL.") and hasattr(obj, "convert")


def _open(path: str | os.PathLike[str], name: str):
    Image = require("PIL.Image", "images")
    try:
        with Image.open(path) as img:
            img.load()
            return img
    except FileNotFoundError:
        raise InputError(f"{name}: file not found") from None
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        raise InputError(f"{name}: cannot be read as an image ({exc})") from None


def pil_pixels(img, prep: Preprocessing) -> np.ndarray:
    """A PIL image in the model's colour mode, resized with its filter: uint8 (H, W, C).

    Meta-training decodes its images with this function too, so that what a model is trained on
    is exactly what the device feeds it. The camera's EXIF orientation is applied (as
    ``PIL.ImageOps.exif_transpose`` does), transparent pixels are composited on white (the paper
    of ink-on-paper data sets), and 16-bit grayscale is scaled to 8 bits by its bit depth.
    """
    ImageOps = require("PIL.ImageOps", "images")
    img = _flatten(ImageOps.exif_transpose(img))
    img = img.convert("L" if prep.channels == 1 else "RGB")
    height, width = prep.input_size
    if prep.crop == "center":
        img = _resize_and_crop(img, height, width, prep)
    elif img.size != (width, height):
        img = _resize(img, (width, height), prep.resize)
    return np.asarray(img, dtype=np.uint8).reshape(height, width, prep.channels)


def _resize(img, size: tuple[int, int], resize: str):
    """Pillow's resample, horizontal pass first, each pass rounded to uint8: what every Pillow up
    to 12 computes, and what ``model.preprocess.onnx`` computes bit for bit. Pillow 13 runs the
    vertical pass first when the height shrinks much more than the width (python-pillow/Pillow#9549),
    which moves a few pixels by one level; one pass at a time keeps the result the same on every
    Pillow version and in every client."""
    if resize == "nearest":
        return img.resize(size, resample=_PIL_FILTERS[resize])
    wide = img.resize((size[0], img.size[1]), resample=_PIL_FILTERS[resize]) if img.size[0] != size[0] else img
    return wide.resize(size, resample=_PIL_FILTERS[resize]) if wide.size[1] != size[1] else wide


MAX_RESIZED_PIXELS = 89_478_485  # Pillow's own decompression-bomb limit, applied to the resized image too


def _resize_and_crop(img, height: int, width: int, prep: Preprocessing):
    """timm's centre crop: scale so the image covers (height, width) / crop_pct, keeping its
    aspect ratio, then cut the centre (height, width) out of it."""
    w0, h0 = img.size
    scale = max(height / h0, width / w0) / prep.crop_pct
    size = (max(width, round(w0 * scale)), max(height, round(h0 * scale)))
    if size[0] * size[1] > MAX_RESIZED_PIXELS:  # a 1 × 1,000,000 strip would grow to gigabytes before the crop
        raise InputError(f"a {w0}x{h0} image is too elongated to centre-crop: scaling its shorter side to "
                         f"{min(size)} px makes a {size[0]}x{size[1]} intermediate, more than "
                         f"{MAX_RESIZED_PIXELS / 1e6:.0f} MP; crop it nearer the model's aspect ratio first")
    if img.size != size:
        img = _resize(img, size, prep.resize)
    left, top = (size[0] - width) // 2, (size[1] - height) // 2
    return img.crop((left, top, left + width, top + height))


def _flatten(img):
    """An image without alpha or high bit depth, in a mode PIL converts to L / RGB faithfully."""
    Image = require("PIL.Image", "images")
    if img.mode in ("RGBA", "LA", "PA", "La", "RGBa") or (img.mode in ("P", "L", "RGB") and "transparency" in img.info):
        # a palette's or a tRNS colour key's transparency (grayscale and RGB PNGs) too, as RGBA twins'
        # and as every other client (sharp decodes the key to alpha)
        rgba = img.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    if img.mode.startswith("I"):  # I;16, I;16B, I (32-bit): 16-bit grayscale PNGs and TIFFs
        values = np.asarray(img, dtype=np.float64)
        scale = 255.0 / (2.0 ** _bit_depth(img) - 1)  # by the file's bit depth: a dark 16-bit scan stays dark
        return Image.fromarray(np.clip(np.rint(values * scale), 0, 255).astype(np.uint8), mode="L")
    if img.mode == "F":
        raise InputError(f"float ('F' mode) images are not supported: found one of size {img.size}; "
                         "save it as 8- or 16-bit")
    return img


def _bit_depth(img) -> int:
    """Bits per sample of an integer grayscale image: 16 for ``I;16*`` modes and PNGs (whose
    integer grayscale is 16-bit at most; older Pillows open it as ``I``), a TIFF's
    BitsPerSample, else 32 (PIL's ``I``)."""
    if img.mode.startswith("I;16") or img.format == "PNG":
        return 16
    bits = getattr(img, "tag_v2", {}).get(258) if img.format == "TIFF" else None
    bits = bits[0] if isinstance(bits, tuple) and bits else bits
    return int(bits) if isinstance(bits, int) and 1 <= bits <= 32 else 32


def _from_pil(img, prep: Preprocessing) -> np.ndarray:
    return pil_pixels(img, prep).transpose(2, 0, 1).astype(np.float32) * np.float32(1 / 255)


def _normalise(batch: np.ndarray, prep: Preprocessing) -> np.ndarray:
    if prep.invert:
        batch = np.float32(1.0) - batch
    mean = np.asarray(prep.mean, dtype=np.float32).reshape(1, -1, 1, 1)
    std = np.asarray(prep.std, dtype=np.float32).reshape(1, -1, 1, 1)
    return np.ascontiguousarray((batch - mean) / std, dtype=np.float32)
