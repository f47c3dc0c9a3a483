"""Fixtures the training tests share."""

from __future__ import annotations

import pytest

from .helpers import small_split


@pytest.fixture(scope="session")
def split():
    """The small glyph split the training tests train on (:func:`.helpers.small_split`)."""
    return small_split()
