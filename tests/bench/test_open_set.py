"""The open-set benchmark's AUROC is the Mann-Whitney statistic: checked against counting pairs."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from anil_edge.bench.open_set import auroc


@settings(max_examples=100, deadline=None)
@given(known=st.lists(st.integers(0, 6), min_size=1, max_size=30), unknown=st.lists(st.integers(0, 6), min_size=1,
                                                                                     max_size=30))
def test_auroc_counts_pairs_with_ties_as_half(known, unknown):
    k, u = np.array(known, float), np.array(unknown, float)  # few distinct values: many ties
    pairs = (k[:, None] > u[None, :]).mean() + 0.5 * (k[:, None] == u[None, :]).mean()
    assert auroc(k, u) == pytest.approx(pairs)
