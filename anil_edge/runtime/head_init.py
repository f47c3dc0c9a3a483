"""The head a device starts adapting from, for any number of enrolled classes C.

ANIL meta-learns a head with one row per training "way", but a device enrolls any number
of classes in any order, so the runtime builds its starting head from a rule carried in the
model's metadata (the training issue chooses and measures it):

- ``"zeros"``: W = 0, b = 0 — every class starts equal, the steps do all the work;
- ``"mean"``: every row is the mean of the meta-learned rows (and bias) — the learned scale
  and offset, with no class preferred;
- ``"prototype"``: W_c = 2·μ_c, b_c = −‖μ_c‖² with μ_c the class's mean support embedding,
  so the starting logits are a nearest-prototype classifier (Proto-MAML; Triantafillou et al.,
  2020, "Meta-Dataset").
"""

from __future__ import annotations

import numpy as np

from ..errors import InputError
from .metadata import HEAD_INIT_RULES, HeadSettings


def initial_head(rule: str, settings: HeadSettings, prototypes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The starting head for the classes whose mean embeddings are ``prototypes`` (C, D).

    Returns:
        ``W`` (C, D) and ``b`` (C,), float32.
    """
    n_classes, dim = prototypes.shape
    if rule == "zeros":
        return np.zeros((n_classes, dim), np.float32), np.zeros(n_classes, np.float32)
    if rule == "mean":
        row = settings.weight.mean(axis=0, dtype=np.float32)
        bias = np.float32(settings.bias.mean(dtype=np.float32))
        return np.tile(row, (n_classes, 1)), np.full(n_classes, bias, np.float32)
    if rule == "prototype":
        protos = prototypes.astype(np.float32, copy=False)
        return 2 * protos, -np.einsum("cd,cd->c", protos, protos)
    raise InputError(f"head_init must be one of {HEAD_INIT_RULES}, found {rule!r}")
