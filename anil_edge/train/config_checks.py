"""Every value check on a :class:`~anil_edge.train.config.TrainConfig`, each problem described
with what was found and what was expected. Types are checked before these, strictly and by the
fields' annotations (:func:`anil_edge.runtime.documents.type_problems`)."""

from __future__ import annotations

import math
import re
from typing import Any

from ..runtime.adaptation import decay_problems, head_init_problems, lr_problems, scale_problems, steps_problems
from ..schema import (
    BACKBONES,
    CROP_MODES,
    CROP_PCT,
    DATASETS,
    EMBEDDINGS,
    GROUPNORM_GROUPS,
    NORMALIZATIONS,
    NORMS,
    RESIZE_FILTERS,
    TEST_FRACTION,
    VALIDATION_FRACTION,
)
from . import timm_catalog

CHOICES = {
    "dataset": DATASETS,
    "engine": ("fast", "l2l"),
    "schedule": ("constant", "cosine"),
    "precision": ("auto", "fp32", "bf16"),
    "norm": NORMS,
    "crop": ("auto", *CROP_MODES),
    "normalization": ("auto", *NORMALIZATIONS),
    "resize": ("auto", *RESIZE_FILTERS),
    "embedding": EMBEDDINGS,
    "sampler": ("device", "learn2learn"),
    "train_tasks": ("random", "deployment"),
    "best_by": ("deployment", "random"),
}
POSITIVE = ("ways", "shots", "queries", "hidden", "blocks", "meta_batch", "eval_every", "log_every", "eval_tasks",
            "checkpoint_every", "input_size", "task_streams", "dist_timeout")
MAX_META_LR = 10.0  # Adam steps beyond this only diverge
_DEVICE = re.compile(r"^(auto|cpu|cuda(:\d+)?)$")


def value_problems(config: Any) -> list[str]:
    """Values out of range or inconsistent with each other (types already checked)."""
    c = config
    problems = [f"{name} must be one of {allowed}, found {getattr(c, name)!r}"
                for name, allowed in CHOICES.items() if getattr(c, name) not in allowed]
    problems += [f"{name} must be >= 1, found {getattr(c, name)}" for name in POSITIVE if getattr(c, name) < 1]
    if c.ways < 2:
        problems.append(f"ways must be >= 2, found {c.ways}")
    if c.channels not in (1, 3):
        problems.append(f"channels must be 1 or 3, found {c.channels}")
    problems += lr_problems(c.adaptation_lr) + steps_problems(c.adaptation_steps) + head_init_problems(c.head_init)
    problems += scale_problems(c.head_scale) + decay_problems(c.head_decay, c.adaptation_lr)
    if not (math.isfinite(c.meta_lr) and 0 < c.meta_lr <= MAX_META_LR):
        problems.append(f"meta_lr must be a finite number in (0, {MAX_META_LR:g}], found {c.meta_lr!r}")
    if not (math.isfinite(c.validation_fraction) and VALIDATION_FRACTION[0] < c.validation_fraction < VALIDATION_FRACTION[1]):
        problems.append(f"validation_fraction must lie in (0, 1), found {c.validation_fraction!r}")
    if not (math.isfinite(c.test_fraction) and TEST_FRACTION[0] <= c.test_fraction < TEST_FRACTION[1]):
        problems.append(f"test_fraction must lie in [0, 1) (0: no test split), found {c.test_fraction!r}")
    if c.validation_fraction + c.test_fraction >= 1:
        problems.append(f"validation_fraction + test_fraction must leave training classes (< 1), found "
                        f"{c.validation_fraction} + {c.test_fraction}")
    if not _DEVICE.match(c.device):
        problems.append(f"device must be 'auto', 'cpu', 'cuda' or 'cuda:N', found {c.device!r}")
    if c.crop_pct is not None and not (math.isfinite(c.crop_pct) and CROP_PCT[0] <= c.crop_pct <= CROP_PCT[1]):
        problems.append(f"crop_pct must lie in [{CROP_PCT[0]:g}, {CROP_PCT[1]:g}], or be unset, found {c.crop_pct!r}")
    if c.normalization == "imagenet" and c.channels != 3:
        problems.append("normalization 'imagenet' needs channels=3 (RGB)")
    if c.threads < 0 or c.chunk < -1:
        problems.append(f"threads must be >= 0 and chunk >= -1, found threads={c.threads}, chunk={c.chunk}")
    if c.iterations < 0:
        problems.append(f"iterations must be >= 0 (0: no meta-training), found {c.iterations}")
    if not (math.isfinite(c.backbone_lr_scale) and 0 <= c.backbone_lr_scale <= 1):
        problems.append(f"backbone_lr_scale must lie in [0, 1], found {c.backbone_lr_scale!r}")
    return problems + _prefix_cache_problems(c) + architecture_problems(c)


def _prefix_cache_problems(c: Any) -> list[str]:
    """A prefix cache that cannot be exact: it needs frozen stages, frozen BatchNorm and no augmentation."""
    problems = [] if c.prefix_cache_mb >= 0 else [f"prefix_cache_mb must be >= 0, found {c.prefix_cache_mb}"]
    if c.prefix_cache:
        needs = [what for what, ok in (("freeze_stages >= 1 (a timm:NAME backbone)", c.freeze_stages > 0),
                                       ("frozen BatchNorm (freeze_bn, the default with pretrained weights)",
                                        c.freezes_bn), ("augment off (--no-augment)", not c.augment)) if not ok]
        if needs:
            problems.append(f"prefix_cache needs {', '.join(needs)}: the frozen stages must be a fixed function of "
                            "each image")
    return problems


def architecture_problems(c: Any) -> list[str]:
    """Backbones that cannot be built: an unknown name, an input too small for the blocks,
    GroupNorm widths, settings only a timm backbone has, two sources of starting weights."""
    if c.init_from and c.pretrained:
        return [f"init_from ({c.init_from}) and pretrained ({c.pretrained}) each give the starting weights: keep one "
                "(a checkpoint trained from pretrained weights carries them)"]
    if c.backbone.startswith(timm_catalog.PREFIX):
        return _timm_problems(c)
    problems = [] if c.backbone in BACKBONES else [
        f"backbone must be one of {BACKBONES} or timm:NAME ({', '.join(timm_catalog.SUPPORTED)}), found {c.backbone!r}"]
    problems += [f"{name} needs a timm:NAME backbone, found backbone {c.backbone!r}" for name, value in
                 (("pretrained", c.pretrained), ("freeze_stages", c.freeze_stages)) if value]
    if c.normalization == "backbone":
        problems.append(f"normalization 'backbone' (timm's pretrained mean/std) needs a timm:NAME backbone, found "
                        f"{c.backbone!r}")
    if c.backbone == "conv4" and c.input_size < 2**c.blocks:
        problems.append(f"input_size {c.input_size} is too small for {c.blocks} conv4 blocks (each halves it): "
                        f"expected >= {2**c.blocks}, or fewer --blocks")
    if c.backbone == "resnet12" and c.input_size < 16:
        problems.append(f"input_size {c.input_size} is too small for resnet12 (4 halvings): expected >= 16")
    if c.norm == "group" and c.backbone != "resnet12" and c.hidden % GROUPNORM_GROUPS:
        problems.append(f"norm 'group' uses {GROUPNORM_GROUPS} groups, which must divide hidden: found "
                        f"hidden={c.hidden}")
    return problems


def _timm_problems(c: Any) -> list[str]:
    problems = timm_catalog.name_problems(c.backbone)
    if c.channels != 3:
        problems.append(f"{c.backbone} takes RGB images: expected channels=3, found {c.channels}")
    if c.input_size < timm_catalog.MIN_INPUT:
        problems.append(f"input_size {c.input_size} is too small for {c.backbone}: expected >= "
                        f"{timm_catalog.MIN_INPUT} (its ImageNet weights were trained at 224; 128 or 160 are faster)")
    if c.norm != "batch":
        problems.append(f"{c.backbone} keeps its own norm layers: norm must be 'batch', found {c.norm!r}")
    stages = timm_catalog.STAGES.get(timm_catalog.timm_name(c.backbone) or "")  # None: an unsupported name
    if stages is not None and not 0 <= c.freeze_stages <= stages:
        problems.append(f"freeze_stages must lie in [0, {stages}] for {c.backbone} (the stem and {stages - 1} stages of "
                        f"blocks), found {c.freeze_stages}")
    elif stages is None and c.freeze_stages < 0:
        problems.append(f"freeze_stages must be >= 0, found {c.freeze_stages}")
    return problems
