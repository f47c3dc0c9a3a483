"""Named training recipes: the seed tutorial's, and the changes that lead to the default.

``SEED`` is learn2learn's ANIL tutorial loop (``examples/vision/anil_fc100.py``: the ``l2l``
engine, Adam 0.003, adaptation_lr 0.5, one adaptation step, meta-batch 32, as many query as support
images, learned head rows, BatchNorm with its batch statistics, no augmentation) applied to
Omniglot 20-way 1-shot with rotated classes. Each later recipe adds one change; the accuracy
table in benchmarks/RESULTS.md shows what each buys in deployed (per-image) accuracy.
"""

from __future__ import annotations

from typing import Any

SEED: dict[str, Any] = dict(
    engine="l2l", norm="batch", recalibrate_bn=False, ways=20, shots=1, queries=1, meta_batch=32,
    adaptation_lr=0.5, adaptation_steps=1, head_init="learned", meta_lr=0.003, schedule="constant",
    augment=False, rotations=True, precision="fp32", channels_last=False, sampler="learn2learn", embedding="raw",
)

# Cumulative: each step keeps the previous ones.
STEPS: tuple[tuple[str, dict[str, Any]], ...] = (
    ("seed", {}),
    ("+bn-recalibrated", dict(recalibrate_bn=True)),
    # the batched engine, with its speed options timed on the machine (bf16 only where native);
    # benchmarks/RESULTS.md's older tables name this step "+fast-bf16" (bf16 was then fixed)
    ("+fast", dict(engine="fast", precision="auto", channels_last=None, chunk=-1, sampler="device")),
    ("+5-steps-5-queries-mb8", dict(adaptation_steps=5, queries=5, meta_batch=8)),
    ("+prototype-init", dict(head_init="prototype")),
    ("+augment-cosine", dict(augment=True, schedule="cosine")),
    # More ways in training than at test (Snell et al., 2017), the same 960 images per iteration
    ("+ways-60", dict(ways=60, queries=1)),
    ("+cosine-embedding", dict(embedding="cosine")),
)
VARIANT_BASE = "+augment-cosine"  # the study's variants each change one thing of this recipe


# Single changes to VARIANT_BASE (the default before "+ways-60"), for the study of issue 12.
_VARIANTS: dict[str, dict[str, Any]] = {
    "group-norm": dict(norm="group"),
    "zeros-init": dict(head_init="zeros"),
    "learned-init": dict(head_init="learned"),
    "input-56": dict(input_size=56),  # 56 px keeps more stroke detail (issue 12's study)
    "wide-96": dict(hidden=96),
    "strokes": dict(stroke_augment=True),  # stroke width + elastic warps on top of the affine ones
    "cosine-embedding": dict(embedding="cosine"),  # L2-normalised embeddings, learned scale
    "strokes-cosine": dict(stroke_augment=True, embedding="cosine"),
    "ways-40": dict(ways=40, queries=2),
    "ways-60": dict(ways=60, queries=1),
    "ways-60-cosine": dict(ways=60, queries=1, embedding="cosine"),
}


def variants() -> tuple[str, ...]:
    """The names :func:`recipe` accepts besides the cumulative steps."""
    return tuple(_VARIANTS)


def recipe(name: str) -> dict[str, Any]:
    """The TrainConfig overrides of a named cumulative step, or of a variant of VARIANT_BASE."""
    merged: dict[str, Any] = dict(SEED)
    for step, changes in STEPS:
        merged.update(changes)
        if step == name:
            return merged
    if name in _VARIANTS:
        return {**recipe(VARIANT_BASE), **_VARIANTS[name]}
    raise KeyError(f"unknown recipe {name!r}: expected one of {[s for s, _ in STEPS] + list(_VARIANTS)}")
