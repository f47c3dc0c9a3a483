"""What anil-edge 0.1 (format 1 of the model metadata and of the enrollment state) wrote
differently, in one place; the readers in :mod:`.metadata_props` and :mod:`.state` map it
onto today's types.

- The inner loop was ``head.{init, lr, steps}`` (metadata) and ``settings.{head_init, lr, steps,
  threshold}`` (state), with the device rule names below.
- The data split lived under ``extra.data`` (metadata); there was no crop (``"squash"``).
"""

from __future__ import annotations

# format 1's device names for the head's starting rule -> today's Adaptation.head_init
V1_HEAD_INITS = {"zeros": "zeros", "mean": "learned", "prototype": "prototype"}


def v1_head_init(rule: object) -> object:
    """Today's name for a format-1 rule; anything else unchanged (the reader reports it)."""
    return V1_HEAD_INITS.get(rule, rule) if isinstance(rule, str) else rule
