"""learn2learn's benchmark formats on tiny fabricated files, read by us and by learn2learn."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

pytest.importorskip("torch")
l2l = pytest.importorskip("learn2learn")

from anil_edge.data.learn2learn_formats import load_cifarfs, load_fc100, load_full_omniglot, load_mini_imagenet
from anil_edge.data.sources import load_split
from anil_edge.errors import InputError
from anil_edge.runtime.metadata import Preprocessing
from tests.train.helpers import OMNI_PREP, write_folder, write_omniglot_zip

RGB32 = Preprocessing((32, 32), 3, (0.5,) * 3, (0.25,) * 3)
RGB84 = Preprocessing((84, 84), 3, (0.5,) * 3, (0.25,) * 3)
SPLITS = {"train": (0, 4), "validation": (4, 6), "test": (6, 9)}  # global class ids per mode


def _images(n: int, size: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, size, size, 3), dtype=np.uint8)


@pytest.fixture(scope="module")
def fc100_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("fc100")
    for k, (mode, (lo, hi)) in enumerate(SPLITS.items()):
        labels = [c for c in range(lo, hi) for _ in range(3)]
        archive = {"data": _images(len(labels), 32, k), "labels": labels}
        with open(root / f"FC100_{'val' if mode == 'validation' else mode}.pickle", "wb") as f:
            pickle.dump(archive, f, protocol=2)
    return root


def test_fc100_matches_learn2learn(fc100_root):
    split = load_fc100(fc100_root, RGB32)
    for mode, ours in zip(SPLITS, (split.train, split.validation, split.test)):
        theirs = l2l.vision.datasets.FC100(str(fc100_root), mode=mode)
        assert len(theirs) == ours.images.shape[0]
        for i in (0, len(theirs) - 1):
            image, label = theirs[i]
            np.testing.assert_array_equal(np.asarray(image), ours.images[i])
            assert ours.class_names[ours.labels[i]] == str(label)
    assert split.train.n_classes == 4 and split.test.n_classes == 3


def test_fc100_resized_to_the_model_input(fc100_root):
    split = load_fc100(fc100_root, Preprocessing((28, 28), 3, (0.5,) * 3, (0.25,) * 3))
    assert split.train.images.shape == (12, 28, 28, 3)


@pytest.fixture(scope="module")
def mini_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("mini")
    for k, (mode, (lo, hi)) in enumerate(SPLITS.items()):
        n = 3 * (hi - lo)
        order = np.random.default_rng(k).permutation(n)  # a class's images need not be contiguous
        class_dict = {f"n{c:08d}": sorted(order[3 * j : 3 * j + 3].tolist()) for j, c in enumerate(range(lo, hi))}
        with open(root / f"mini-imagenet-cache-{mode}.pkl", "wb") as f:
            pickle.dump({"image_data": _images(n, 84, k), "class_dict": class_dict}, f)
    return root


def test_mini_imagenet_matches_learn2learn(mini_root):
    split = load_mini_imagenet(mini_root, RGB84)
    for mode, ours in zip(SPLITS, (split.train, split.validation, split.test)):
        theirs = l2l.vision.datasets.MiniImagenet(str(mini_root), mode=mode)
        np.testing.assert_array_equal(theirs.x.permute(0, 2, 3, 1).numpy().astype(np.uint8), ours.images)
        same_class = theirs.y[:, None] == theirs.y[None, :]  # the same partition into classes
        np.testing.assert_array_equal(same_class, ours.labels[:, None] == ours.labels[None, :])


def test_cifarfs_matches_learn2learn(tmp_path):
    processed = tmp_path / "cifarfs" / "processed"
    for mode, (lo, hi) in SPLITS.items():
        write_folder(processed / ("val" if mode == "validation" else mode), {f"class{c}": 2 for c in range(lo, hi)},
                     size=32, rgb=True)
    split = load_cifarfs(tmp_path, RGB32)
    theirs = l2l.vision.datasets.CIFARFS(str(tmp_path), mode="validation")
    assert tuple(theirs.classes) == split.validation.class_names
    assert [label for _, label in theirs.samples] == split.validation.labels.tolist()
    np.testing.assert_array_equal(np.asarray(theirs[0][0]), split.validation.images[0])


def test_full_omniglot_layout(tmp_path):
    import zipfile

    for part in ("background", "evaluation"):
        zipped = write_omniglot_zip(tmp_path / f"{part}.zip", f"images_{part}",
                                    {f"Alpha_{part}{i}": 2 for i in range(2)}, drawers=2)
        with zipfile.ZipFile(zipped) as archive:
            archive.extractall(tmp_path / "omniglot-py")
    data = load_full_omniglot(tmp_path, OMNI_PREP)
    assert data.n_classes == 8 and len(set(data.groups)) == 4
    split = load_split("full-omniglot", (str(tmp_path),), OMNI_PREP, validation=0.25, test=0.25, seed=0)
    assert split.test.n_classes == 2 and split.validation.n_classes == 2


def test_malicious_pickle_is_refused(tmp_path):
    class Exploit:
        def __reduce__(self):
            return (exec, ("raise SystemExit('pwned')",))

    with open(tmp_path / "FC100_train.pickle", "wb") as f:
        pickle.dump({"data": Exploit(), "labels": []}, f)
    with pytest.raises(InputError, match="refusing to load builtins.exec"):
        load_fc100(tmp_path, RGB32)


def test_missing_and_malformed_files(tmp_path):
    with pytest.raises(InputError, match="FC100_train.pickle: no such file"):
        load_fc100(tmp_path, RGB32)
    with open(tmp_path / "mini-imagenet-cache-train.pkl", "wb") as f:
        pickle.dump({"images": []}, f)
    with pytest.raises(InputError, match="expected a dict with keys \\['image_data', 'class_dict'\\]"):
        load_mini_imagenet(tmp_path, RGB84)
    with pytest.raises(InputError, match="processed CIFAR-FS"):
        load_cifarfs(tmp_path, RGB32)
