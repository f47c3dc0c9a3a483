"""Helpers shared by the bad-input suite's modules."""

from __future__ import annotations

import copy
from typing import Any


def edit(doc: dict, path: str, value: Any = None, delete: bool = False) -> dict:
    """A deep copy of the JSON document ``doc`` with the field at dotted ``path`` set or deleted."""
    doc = copy.deepcopy(doc)
    *parents, leaf = path.split(".")
    node = doc
    for part in parents:
        node = node[part]
    if delete:
        del node[leaf]
    else:
        node[leaf] = value
    return doc
