"""Training distortions: seeded, in range, and doing what they say (stroke width both ways)."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from anil_edge.train.augment import random_affine, random_strokes


def _strokes(n: int = 64) -> torch.Tensor:
    x = torch.zeros(n, 1, 28, 28)
    x[:, :, 6:22, 13:15] = 1.0  # a vertical bar, 2 px wide
    x[:, :, 13:15, 6:22] = 1.0  # and a horizontal one
    return x


@pytest.mark.parametrize("distort", [random_affine, random_strokes])
def test_seeded_in_range_and_per_image(distort):
    x = _strokes()
    a = distort(x, generator=torch.Generator().manual_seed(3))
    b = distort(x, generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert a.shape == x.shape and a.min() >= 0 and a.max() <= 1
    assert not torch.equal(a[0], a[1])  # each image its own parameters


def test_stroke_width_varies_both_ways():
    x = _strokes(256)
    ink = random_strokes(x, generator=torch.Generator().manual_seed(0)).sum(dim=(1, 2, 3))
    affine_ink = random_affine(x, generator=torch.Generator().manual_seed(0)).sum(dim=(1, 2, 3))
    ratio = ink / affine_ink
    assert (ratio > 1.3).sum() > 20 and (ratio < 0.8).sum() > 20  # thickened and thinned images
    no_width = random_strokes(x, generator=torch.Generator().manual_seed(0), width=0.0, elastic=0.0)
    torch.testing.assert_close(no_width, random_affine(x, generator=torch.Generator().manual_seed(0)))
