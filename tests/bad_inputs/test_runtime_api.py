"""The device runtime's Python API under bad input: every case ends in the project's own error
(an :class:`AnilEdgeError` saying what was found and what was expected), never a raw numpy,
onnxruntime or Python traceback, and never a silently wrong answer."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from anil_edge.errors import AnilEdgeError, InputError, ModelError, NotEnrolledError
from anil_edge.runtime import Backbone, FewShotClassifier, head
from tests.helpers import DIM, glyphs
from tests.tolerances import assert_f32_close, conv_terms

GOOD = dict(E=np.ones((4, 8), np.float32), y=np.array([0, 1, 2, 1]), W=np.zeros((3, 8), np.float32),
            b=np.zeros(3, np.float32), lr=0.1, steps=1)
ADAPT_CASES = [
    dict(lr="0.5"), dict(lr=None), dict(lr=float("nan")), dict(lr=float("inf")), dict(lr=-1.0), dict(lr=1e39),
    dict(lr=True), dict(lr=[0.1]), dict(steps=2.5), dict(steps="3"), dict(steps=-1), dict(steps=10**9),
    dict(steps=True), dict(steps=None), dict(E=np.ones((4, 9), np.float32)), dict(E=np.full((4, 8), np.nan)),
    dict(E=np.ones(8)), dict(E="embeddings"), dict(E=np.ones((4, 8), bool)), dict(E=np.ones((2, 2, 4, 8))),
    dict(y=np.array([0, 1, 2, 3])), dict(y=np.array([0, 1, -1, 1])), dict(y=np.array([0.0, 1.0, 2.0, 1.0])),
    dict(y=np.array([0, 1])), dict(y="0121"), dict(W=np.zeros((0, 8))), dict(W=np.zeros((3, 7))),
    dict(W=np.full((3, 8), np.inf)), dict(b=np.zeros(4)), dict(b=np.zeros((3, 1))), dict(b=None),
]


@pytest.mark.parametrize("change", ADAPT_CASES, ids=[repr(c)[:60] for c in ADAPT_CASES])
def test_head_adapt_refuses(change):
    args = {**GOOD, **change}
    with pytest.raises(InputError):
        head.adapt(args.pop("E"), args.pop("y"), args.pop("W"), args.pop("b"), **args)


@settings(max_examples=60, deadline=None)
@given(lr=st.one_of(st.text(), st.none(), st.booleans(), st.floats(allow_nan=True), st.lists(st.floats())),
       steps=st.one_of(st.text(), st.none(), st.floats(), st.integers(-10**12, 10**12), st.booleans()))
def test_head_adapt_never_raises_anything_but_input_error(lr, steps):
    """Property: whatever lr and steps are, adapt either works (they are valid) or says why."""
    try:
        W, b = head.adapt(GOOD["E"], GOOD["y"], GOOD["W"], GOOD["b"], lr=lr, steps=steps)
    except InputError:
        return
    assert np.isfinite(W).all() and np.isfinite(b).all()


@pytest.mark.parametrize("Z", [np.zeros((3, 0)), np.zeros(0), "logits", np.array([[np.nan, 1.0]]), None,
                               np.array([["a", "b"]])], ids=["no-classes", "empty", "text", "nan", "none", "strings"])
@pytest.mark.parametrize("fn", [head.softmax, head.log_softmax])
def test_softmax_refuses(fn, Z):
    with pytest.raises(InputError):
        fn(Z)


@pytest.fixture
def enrolled(backbone):
    images, labels = glyphs(3, 2, seed=3)
    clf = FewShotClassifier(backbone)
    for c in range(3):
        clf.enroll(f"c{c}", images[labels == c])
    return clf


SETTINGS = [
    dict(threshold="0.5"), dict(threshold=-0.1), dict(threshold=1.5), dict(threshold=float("nan")),
    dict(threshold=True), dict(threshold=None), dict(adaptation_lr="0.5"), dict(adaptation_lr=float("nan")),
    dict(adaptation_lr=-1), dict(adaptation_lr=1e39), dict(adaptation_lr=True), dict(adaptation_steps=2.5),
    dict(adaptation_steps="3"), dict(adaptation_steps=-1), dict(adaptation_steps=10**9),
    dict(adaptation_steps=True), dict(head_init="mean"), dict(head_init="random"), dict(head_init=3),
    dict(reject=1.5), dict(reject="0.05"),
]


@pytest.mark.parametrize("change", SETTINGS, ids=[repr(c) for c in SETTINGS])
def test_classifier_settings_are_refused_at_construction(backbone, change):
    with pytest.raises(InputError):
        FewShotClassifier(backbone, **change)


@pytest.mark.parametrize("change", SETTINGS + [dict(learning_rate=0.1), dict(steps=3)],
                         ids=[repr(c) for c in SETTINGS] + ["unknown-1", "unknown-2"])
def test_classifier_settings_are_refused_by_configure_and_leave_it_unchanged(enrolled, change):
    before = (enrolled.adaptation, enrolled.threshold)
    with pytest.raises(InputError):
        enrolled.configure(**change)
    assert (enrolled.adaptation, enrolled.threshold) == before


def test_numpy_integers_are_accepted_everywhere(backbone):
    clf = FewShotClassifier(backbone, adaptation_steps=np.int64(3), adaptation_lr=np.float32(0.5))
    assert clf.adaptation.adaptation_steps == 3 and type(clf.adaptation.adaptation_steps) is int
    head.adapt(GOOD["E"], GOOD["y"], GOOD["W"], GOOD["b"], lr=0.1, steps=np.int64(3))


BAD_LABELS = [None, 2.5, True, "", "   ", [1], (1,), b"x", {"a": 1}, float("nan")]


@pytest.mark.parametrize("label", BAD_LABELS, ids=[repr(x) for x in BAD_LABELS])
def test_bad_labels_are_refused(enrolled, label):
    with pytest.raises(InputError, match="label"):
        enrolled.enroll(label, np.zeros((28, 28), np.uint8))


def test_mixed_label_types_are_refused(enrolled):
    with pytest.raises(InputError, match="labels of mixed types"):
        enrolled.enroll(7, np.zeros((28, 28), np.uint8))


BAD_IMAGES = {
    "empty-list": [], "wrong-size": np.zeros((27, 28), np.uint8), "wrong-channels": np.zeros((28, 28, 3), np.uint8),
    "nan-floats": np.full((1, 1, 28, 28), np.nan, np.float32), "floats-above-1": np.full((1, 1, 28, 28), 2.0),
    "negative-floats": np.full((1, 1, 28, 28), -0.5), "bool": np.zeros((28, 28), bool),
    "complex": np.zeros((28, 28), complex), "objects": np.array([[object()]]), "5-d": np.zeros((1, 1, 1, 28, 28)),
    "1-d": np.zeros(784, np.uint8), "missing-file": "no/such/image.png", "a-number": 42, "none": None,
    "list-with-none": [np.zeros((28, 28), np.uint8), None], "empty-batch": np.zeros((0, 28, 28), np.uint8),
    "int64-pixels": np.full((28, 28), 300, np.int64), "strings": np.array([["a"]]),
}


@pytest.mark.parametrize("name", BAD_IMAGES)
def test_bad_images_are_refused_by_enroll(enrolled, name):
    with pytest.raises(InputError):
        enrolled.enroll("c0", BAD_IMAGES[name])
    assert enrolled.support_counts()["c0"] == 2  # nothing half-enrolled


@pytest.mark.parametrize("name", BAD_IMAGES)
def test_bad_images_are_refused_by_predict(enrolled, name):
    with pytest.raises(InputError):
        enrolled.predict(BAD_IMAGES[name])


@pytest.mark.parametrize("content, suffix", [(b"", ".png"), (b"not an image", ".png"), (b"\x89PNG\r\n\x1a\n\0\0", ".png"),
                                             (b"GIF89a", ".gif"), (b"\xff\xd8\xff", ".jpg")],
                         ids=["empty", "text", "truncated-png", "truncated-gif", "truncated-jpeg"])
def test_unreadable_image_files_are_refused(enrolled, tmp_path, content, suffix):
    path = tmp_path / f"bad{suffix}"
    path.write_bytes(content)
    with pytest.raises(InputError, match=f"^{path}: cannot be read as an image"):
        enrolled.enroll("c0", [str(path)])


def test_a_folder_is_not_an_image(enrolled, tmp_path):
    with pytest.raises(InputError):
        enrolled.predict(str(tmp_path))


BAD_EMBEDDINGS = {"wrong-dim": np.zeros((2, DIM + 1)), "nan": np.full((2, DIM), np.nan), "3-d": np.zeros((1, 2, DIM)),
                  "text": "embeddings", "empty": np.zeros((0, DIM)), "inf": np.full((1, DIM), np.inf)}


@pytest.mark.parametrize("name", BAD_EMBEDDINGS)
def test_bad_embeddings_are_refused(enrolled, name):
    with pytest.raises(InputError):
        enrolled.predict_proba_embeddings(BAD_EMBEDDINGS[name])


@pytest.mark.parametrize("scale", [3e38, -3e38, 1e30, 1e20, 1e5])
def test_huge_query_embeddings_are_refused_in_one_line(enrolled, scale):
    E = np.full((2, DIM), scale, np.float32)
    E[1, ::2] *= -1
    with pytest.raises(InputError, match=r"query embeddings reach magnitude .*; expected entries within ±10000"):
        enrolled.predict_proba_embeddings(E)


@pytest.mark.parametrize("scale", [1e5, 1e7, 3e38])
def test_huge_support_embeddings_name_the_class_not_the_head(backbone, scale):
    """Refused where they enter, naming what the user gave (never "head bias b", which they did not)."""
    clf = FewShotClassifier(backbone)
    with pytest.raises(InputError, match=r"embeddings for class 'mug' reach magnitude") as info:
        clf.enroll_embeddings("mug", np.full((2, DIM), scale, np.float32))
    assert "bias" not in str(info.value) and len(clf) == 0


def test_embeddings_at_the_bound_are_accepted(backbone):
    clf = FewShotClassifier(backbone)
    clf.enroll_embeddings("a", np.full((1, DIM), 1e4, np.float32))
    clf.enroll_embeddings("b", np.full((1, DIM), -1e4, np.float32))
    assert np.isfinite(clf.predict_proba_embeddings(np.full((1, DIM), 1e4, np.float32))).all()


BAD_PROBABILITIES = {"too-wide": np.full((1, 4), 0.25), "too-narrow": np.full((1, 2), 0.5), "1-d": np.ones(3) / 3,
                     "above-1": np.array([[3.0, 0.0, 0.0]]), "negative": np.array([[-0.5, 1.0, 0.5]]),
                     "nan": np.array([[np.nan, 0.5, 0.5]]), "text": "probabilities", "integers": np.array([[1, 0, 0]])}


@pytest.mark.parametrize("name", BAD_PROBABILITIES)
def test_apply_threshold_refuses_probabilities_that_do_not_fit(enrolled, name):
    with pytest.raises(InputError):
        enrolled.apply_threshold(BAD_PROBABILITIES[name])


def test_predicting_before_enrolling(backbone):
    with pytest.raises(NotEnrolledError):
        FewShotClassifier(backbone).predict(np.zeros((28, 28), np.uint8))


@pytest.mark.parametrize("label", ["nobody", 3, None])
def test_removing_what_is_not_enrolled(enrolled, label):
    with pytest.raises(InputError, match="not enrolled"):
        enrolled.remove(label)


BACKBONE_ARGS = [dict(device="tpu"), dict(device=None), dict(batch_size=0), dict(batch_size=-1),
                 dict(batch_size="64"), dict(batch_size=2.5), dict(intra_op_threads=-1), dict(inter_op_threads=-2),
                 dict(intra_op_threads="2"), dict(device="cuda")]


@pytest.mark.parametrize("kwargs", BACKBONE_ARGS, ids=[repr(k) for k in BACKBONE_ARGS])
def test_backbone_options_are_checked(model_path, kwargs):
    with pytest.raises(AnilEdgeError):
        Backbone(model_path, **kwargs)


@pytest.mark.parametrize("content", [b"", b"garbage", b"\x08\x07" * 50, b"\x0a\xff\xff\xff\xff\x0f"],
                         ids=["empty", "text", "junk-protobuf", "length-past-end"])
def test_files_that_are_not_models(tmp_path, content):
    path = tmp_path / "m.onnx"
    path.write_bytes(content)
    with pytest.raises(ModelError):
        Backbone(path)


def test_a_folder_or_missing_file_is_not_a_model(tmp_path):
    for path in (tmp_path, tmp_path / "missing.onnx"):
        with pytest.raises(ModelError):
            Backbone(path)


def _png(tmp_path, name, image, **save):
    path = tmp_path / name
    image.save(path, **save)
    return str(path)


def test_transparent_png_is_composited_on_white_not_black(backbone, tmp_path):
    """An RGBA glyph on a transparent background embeds like the same glyph on white paper."""
    from PIL import Image

    ink = np.zeros((28, 28, 4), np.uint8)
    ink[8:20, 8:20, 3] = 255  # opaque black square; the rest transparent (RGB 0: black if alpha is dropped)
    on_white = np.full((28, 28), 255, np.uint8)
    on_white[8:20, 8:20] = 0
    a = backbone.embed([_png(tmp_path, "a.png", Image.fromarray(ink, "RGBA"))])
    b = backbone.embed([_png(tmp_path, "b.png", Image.fromarray(on_white, "L"))])
    assert_f32_close(a, b, terms=conv_terms(32, 4))


def test_exif_orientation_is_applied(backbone, tmp_path):
    """A JPEG stored sideways with EXIF orientation 6 (rotate 90° clockwise to view) embeds like
    the upright image."""
    from PIL import Image

    upright = np.full((28, 28), 255, np.uint8)
    upright[2:10, 4:24] = 0  # a bar near the top
    stored = Image.fromarray(np.rot90(upright, 1).copy(), "L")  # what a sideways camera writes
    exif = Image.Exif()
    exif[0x0112] = 6
    sideways = _png(tmp_path, "s.png", stored, exif=exif.tobytes())
    straight = _png(tmp_path, "u.png", Image.fromarray(upright, "L"))
    assert_f32_close(backbone.embed([sideways]), backbone.embed([straight]), terms=conv_terms(32, 4))


def test_16_bit_grayscale_is_scaled_not_clipped(backbone, tmp_path):
    from PIL import Image

    eight = np.full((28, 28), 255, np.uint8)
    eight[8:20, 8:20] = 0
    sixteen = Image.fromarray(eight.astype(np.uint16) * 257)
    assert_f32_close(backbone.embed([_png(tmp_path, "16.png", sixteen)]),
                     backbone.embed([_png(tmp_path, "8.png", Image.fromarray(eight))]), terms=conv_terms(32, 4))


def test_a_dark_16_bit_scan_is_scaled_by_its_bit_depth_not_its_values(backbone, tmp_path):
    """Every value <= 255 in a 16-bit file is a very dark image, not an 8-bit one."""
    from PIL import Image

    from anil_edge.runtime.preprocess import pil_pixels

    dark = np.full((28, 28), 200, np.uint16)  # 200 / 65535: nearly black
    path = _png(tmp_path, "dark16.png", Image.fromarray(dark))
    pixels = pil_pixels(Image.open(path), backbone.metadata.preprocessing)
    assert int(pixels.max()) <= 1


@pytest.mark.parametrize("labels", ["mug", b"mug", {"a", "b", "c"}, None, {"a": 1}, np.zeros((3, 1))],
                         ids=["str", "bytes", "set", "None", "dict", "2-d array"])
def test_labels_must_be_a_sequence_with_one_label_per_image(backbone, labels):
    images, _ = glyphs(3, 1)
    clf = FewShotClassifier(backbone)
    with pytest.raises(InputError, match="labels must be"):
        clf.enroll_many(images, labels)
    assert len(clf) == 0


def test_labels_that_differ_only_in_unicode_normalisation_are_one_class(backbone):
    import unicodedata

    images, _ = glyphs(2, 1)
    clf = FewShotClassifier(backbone)
    composed, decomposed = "caf\u00e9", "cafe\u0301"
    clf.enroll(composed, images[:1])
    clf.enroll(decomposed, images[1:2])
    assert clf.labels == [unicodedata.normalize("NFC", composed)] and clf.support_counts() == {composed: 2}
    assert decomposed in clf
    clf.remove(decomposed)
    assert len(clf) == 0


def test_images_in_nested_folders_belong_to_their_class_and_names_are_nfc(tmp_path):
    from anil_edge.runtime.folders import class_folders
    from tests.train.helpers import write_folder

    write_folder(tmp_path, {"mug": 1, "mug/side": 2, "mug/.thumbs": 1, "caf\u00e9": 1, "cafe\u0301": 1}, size=28)
    classes = class_folders(tmp_path)
    assert sorted(classes) == ["caf\u00e9", "mug"]
    assert len(classes["mug"]) == 3 and len(classes["caf\u00e9"]) == 2


def test_query_folders_are_walked_by_the_class_folders_rule(tmp_path):
    """Queries named by a folder: hidden sub-folders skipped, symlinked files read, symlinked
    folders (a loop here) not entered, as in class folders and in the Node client."""
    from anil_edge.runtime.folders import images_in
    from tests.train.helpers import write_folder

    write_folder(tmp_path / "q", {"a": 2, ".thumbs": 1}, size=28)
    (tmp_path / "q" / "a" / "link.png").symlink_to(next((tmp_path / "q" / "a").glob("*.png")))
    (tmp_path / "q" / "a" / "loop").symlink_to(tmp_path / "q", target_is_directory=True)
    found = images_in([str(tmp_path / "q")])
    assert [p.relative_to(tmp_path / "q").parts[0] for p in found] == ["a"] * 3
