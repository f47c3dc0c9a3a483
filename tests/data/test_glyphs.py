"""The embedded default data set: rendered glyphs."""

from __future__ import annotations

import unicodedata

import numpy as np
import pytest

pytest.importorskip("matplotlib")
pytest.importorskip("scipy")

from anil_edge.data.glyphs import load_glyphs, render_glyphs
from anil_edge.data.splits import split_by_group


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    return load_glyphs(instances=4, seed=0, max_classes=60, cache_dir=str(tmp_path_factory.mktemp("cache")))


def test_shapes_and_classes(small):
    assert small.images.shape == (240, 28, 28, 1) and small.images.dtype == np.uint8
    assert np.array_equal(small.class_sizes(), np.full(60, 4))
    assert all(name.startswith("U+") for name in small.class_names)
    cp = int(small.class_names[0].split()[0][2:], 16)
    assert small.groups[0] == unicodedata.name(chr(cp)).split()[0]
    ink = (small.images < 128).mean(axis=(1, 2, 3))
    assert ink.min() > 0.005 and np.median(ink) < 0.5  # dark ink on white, never blank


def test_instances_differ_but_are_deterministic(small, tmp_path):
    a, b = small.images[0, :, :, 0], small.images[1, :, :, 0]
    assert not np.array_equal(a, b)
    again = render_glyphs(instances=4, seed=0, max_classes=60)
    np.testing.assert_array_equal(again.images, small.images)
    other = render_glyphs(instances=4, seed=1, max_classes=60)
    assert not np.array_equal(other.images, small.images)


def test_cache_round_trip(tmp_path, caplog):
    caplog.set_level("INFO", logger="anil_edge")
    first = load_glyphs(instances=2, seed=3, max_classes=10, cache_dir=str(tmp_path))
    assert "rendering the embedded glyph data set (first use only" in caplog.text  # the slow step says so
    files = list(tmp_path.glob("glyphs-*.npz"))
    assert len(files) == 1
    caplog.clear()
    second = load_glyphs(instances=2, seed=3, max_classes=10, cache_dir=str(tmp_path))
    assert "rendering" not in caplog.text  # from the cache: nothing to say
    np.testing.assert_array_equal(first.images, second.images)
    assert first.class_names == second.class_names and first.groups == second.groups


@pytest.mark.slow
def test_full_set_has_over_a_thousand_classes_split_by_script(tmp_path):
    data = load_glyphs(cache_dir=str(tmp_path))
    assert data.n_classes >= 1000
    split = split_by_group(data, validation=0.15, test=0.25, seed=0)
    scripts = [set(s.groups) for s in (split.train, split.validation, split.test)]
    assert scripts[0].isdisjoint(scripts[2]) and scripts[1].isdisjoint(scripts[2])
    assert split.test.n_classes >= 0.2 * data.n_classes
