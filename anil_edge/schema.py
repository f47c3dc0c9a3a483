"""Every choice and limit that more than one stage checks, defined once, without torch, so that
the training configuration, the backbone record, the model metadata and the data loaders all
import the same tuple (a new data set, filter or norm is one edit here)."""

from __future__ import annotations

# -- data ---------------------------------------------------------------------------------------
FIXED_SPLIT_DATASETS = ("fc100", "mini-imagenet", "cifarfs")  # shipped with their published splits
DATASETS = ("glyphs", "omniglot", "folder", "full-omniglot", "emoji", *FIXED_SPLIT_DATASETS)
# The configuration needs validation classes (0 < fraction < 1); a model's recorded provenance may
# hold 0 (no split recorded), so the metadata takes [0, 1) for both.
VALIDATION_FRACTION = (0.0, 1.0)  # open interval, for training
TEST_FRACTION = (0.0, 1.0)  # [0, 1): 0 keeps every class for training and validation

# -- preprocessing ------------------------------------------------------------------------------
RESIZE_FILTERS = ("nearest", "bilinear", "bicubic", "lanczos")  # Pillow's, by name
CROP_MODES = ("squash", "center")  # resize as is, or timm's aspect-keeping centre crop
CROP_PCT = (0.1, 1.0)  # [low, high]: the shorter side is resized to size / crop_pct
NORMALIZATIONS = ("dataset", "imagenet", "backbone")  # where mean/std come from

# -- backbones ----------------------------------------------------------------------------------
BACKBONES = ("conv4", "conv4-stride", "resnet12")  # besides "timm:NAME"
NORMS = ("batch", "group")  # BatchNorm (learn2learn's), GroupNorm (per image)
GROUPNORM_GROUPS = 8  # GroupNorm's groups; they must divide every conv4 layer's width
EMBEDDINGS = ("raw", "cosine")  # features as they are, or L2-normalised times a learned scale
