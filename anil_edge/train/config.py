"""The meta-training configuration: one frozen dataclass, one comment per field (as nanoGPT's
``GPTConfig``). Stored whole in every checkpoint."""

from __future__ import annotations

import difflib
import os
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

from ..errors import InputError, raise_if_problems
from ..runtime.adaptation import Adaptation
from ..runtime.documents import from_document, type_problems
from ..runtime.legacy import CONFIG_FIELDS_BEFORE, RENAMED_CONFIG_FIELDS
from ..runtime.metadata import DataProvenance
from .config_checks import CHOICES, value_problems

DATASETS = CHOICES["dataset"]


@dataclass(frozen=True)
class TrainConfig:
    # --- data ---
    dataset: str = "glyphs"  # glyphs (embedded, offline), omniglot, folder, full-omniglot, emoji, fc100, mini-imagenet, cifarfs
    data: tuple[str, ...] = ()  # sources: Omniglot zips / folders, a folder's or data set's root; glyphs: a cache folder
    rotations: bool | None = None  # 90/180/270° rotations of the training classes as extra classes; unset: 1 channel only
    validation_fraction: float = 0.15  # share of classes (whole groups) held out for validation
    test_fraction: float = 0.25  # share of classes (whole groups) held out for the final test; 0: none (test on other data)
    split_seed: int = 0  # shuffles the groups before the split
    input_size: int = 28  # backbone input height = width
    channels: int = 1  # 1 grayscale, 3 RGB
    invert: bool | None = None  # 1 - x (dark ink on white becomes strokes = 1); None: yes for 1 channel, no for RGB
    crop: str = "auto"  # "squash" (resize as is), "center" (keep the aspect ratio, centre-crop); auto: RGB center
    crop_pct: float | None = None  # crop="center": shorter side resized to input_size / crop_pct; unset: timm's or 1
    normalization: str = "auto"  # mean/std: "dataset" (of the images), "imagenet", "backbone" (timm's); auto: timm's or dataset
    resize: str = "auto"  # filter resizing images to input_size: bilinear, bicubic, lanczos, nearest; auto: timm's or lanczos
    # --- tasks ---
    ways: int = 60  # classes per training task (and rows of the meta-learned head); tests use any number
    shots: int = 1  # support images per class
    queries: int = 1  # query images per class, scored by the outer loss
    sampler: str = "device"  # training tasks: "device" (vectorised on the training device) or "learn2learn" (Taskset)
    train_tasks: str = "random"  # "random" classes, or "deployment": one group's classes, support/query by other drawers
    # --- backbone ---
    backbone: str = "conv4"  # "conv4", "conv4-stride" (learn2learn's OmniglotCNN), "resnet12" or "timm:NAME" (ImageNet models)
    pretrained: str = ""  # timm:NAME: ImageNet weights, a .pt/.pth/.safetensors state dict or "efficientnet-lite0"; "": random
    init_from: str = ""  # a .pt of anil-edge train whose backbone starts this run (same architecture): P>M>F's order
    freeze_bn: bool | None = None  # keep BatchNorm statistics fixed in meta-training; unset: yes with pretrained weights
    freeze_stages: int = 0  # timm:NAME: no gradients through the first N stages (the stem is the first)
    backbone_lr_scale: float = 1.0  # the backbone's learning rate is meta_lr times this (the head's is meta_lr)
    prefix_cache: bool = False  # freeze_stages, frozen BN, no augment: run the frozen stages once per image (exact)
    prefix_cache_mb: int = 2048  # at most this many MB of cached prefix activations; other images are computed each time
    hidden: int = 64  # Conv-4 channels per block
    blocks: int = 4  # Conv-4 blocks
    norm: str = "batch"  # "batch" (BatchNorm; deployed with recalibrated statistics) or "group" (GroupNorm, per image)
    embedding: str = "cosine"  # "cosine": L2-normalised times a learned scale (in the exported model), or "raw"
    recalibrate_bn: bool = True  # norm="batch": re-estimate BN statistics over training images before validating
    # --- inner loop (ANIL: the head only) ---
    engine: str = "fast"  # "fast": batched closed-form steps; "l2l": learn2learn MAML clone/adapt per task
    adaptation_lr: float = 0.5  # inner-loop SGD learning rate (learn2learn's MAML lr; formerly fast_lr)
    adaptation_steps: int = 5  # inner-loop SGD steps
    head_init: str = "prototype"  # start of the inner loop: "prototype" rows, "zeros" or the "learned" rows
    head_scale: float = 1.0  # the start's logit scale (about 1/D..4/D keeps cosine-embedding logits of order 1)
    head_decay: float = 0.0  # L2 pull of each inner step toward the start (0: plain SGD)
    # --- outer loop ---
    meta_lr: float = 0.003  # Adam learning rate over backbone + head
    meta_batch: int = 8  # tasks per meta-iteration
    iterations: int = 2000  # meta-iterations; 0: none (a pretrained backbone as is, with the prototype head)
    schedule: str = "cosine"  # meta-learning-rate schedule: "constant" or "cosine" decay to 5%
    augment: bool = True  # small random affine distortions of every training image
    stroke_augment: bool = False  # with augment: also random stroke width and smooth elastic warps (ink images)
    precision: str = "auto"  # "fp32", "bf16" (autocasts the backbone); auto: timed at start, bf16 only if native
    channels_last: bool | None = None  # NHWC memory format for the backbone's convolutions; unset: timed at start
    chunk: int = -1  # images per backbone call, 0: all at once; -1: auto (timed at start: all, or 128 on CPUs)
    task_streams: int = 1  # independent task streams per meta-batch (torchrun: one per rank; set N alone to match N ranks)
    dist_timeout: int = 600  # torchrun: seconds a collective waits for the other ranks before the job fails
    # --- evaluation, checkpoints, logging ---
    eval_every: int = 100  # iterations between validation runs (and best-checkpoint updates)
    log_every: int = 10  # iterations per training record (their mean loss/accuracy); the only waits for a GPU
    eval_tasks: int = 200  # validation tasks per run (fixed seed: the same tasks each time)
    best_by: str = "deployment"  # best.pt by "deployment" validation (within group, distinct drawers) or "random" tasks
    checkpoint_every: int = 100  # iterations between saves of last.pt
    seed: int = 0  # seeds Python, numpy and torch; tasks and augmentations follow from it
    device: str = "auto"  # "auto" (CUDA when present), "cpu", "cuda", "cuda:N"
    threads: int = 0  # torch CPU threads; 0 keeps torch's default
    out_dir: str = "runs/train"  # checkpoints, metrics.jsonl and curves.png go here
    progress: bool = True  # show a progress bar

    def __post_init__(self) -> None:
        problems = type_problems(self)
        if not problems:  # value checks assume the declared types
            problems = value_problems(self)
        raise_if_problems(problems, InputError, "invalid training configuration")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def uses_rotations(self) -> bool:
        """``rotations``, or by default for grayscale only: a rotated glyph is a new character
        (Omniglot's standard augmentation), a rotated photo of a mug is still a mug."""
        return self.channels == 1 if self.rotations is None else self.rotations

    @property
    def inverts(self) -> bool:
        """Whether pixels are inverted: ``invert``, or by default for grayscale (ink on paper) only."""
        return self.channels == 1 if self.invert is None else self.invert

    @property
    def freezes_bn(self) -> bool:
        """``freeze_bn``, or by default with pretrained weights: a few-shot meta-batch's statistics
        would overwrite the ImageNet ones the weights were trained with."""
        return bool(self.pretrained) if self.freeze_bn is None else self.freeze_bn

    @property
    def crop_mode(self) -> str:
        """``crop``, with "auto" resolved: aspect-preserving centre crops for RGB photos."""
        return ("center" if self.channels == 3 else "squash") if self.crop == "auto" else self.crop

    def adaptation(self) -> Adaptation:
        """The inner loop this config trains with, as exported and deployed."""
        return Adaptation(self.adaptation_lr, self.adaptation_steps, self.head_init, self.head_scale, self.head_decay)

    def provenance(self) -> DataProvenance:
        """The training data and its class split, as recorded in exported models."""
        return DataProvenance(self.dataset, self.data, self.validation_fraction, self.test_fraction, self.split_seed)

    def shipped_provenance(self, model_folder: str | os.PathLike[str] = ".") -> DataProvenance:
        """:meth:`provenance` as an exported model records it: each source relative to the model's
        folder (``anil-edge evaluate model.onnx`` looks there), or by name when the two share no
        folder but the root — never a machine's absolute layout. A checkpoint, which stays on the
        training machine, keeps the paths as given."""
        return replace(self.provenance(), sources=tuple(_portable(s, Path(model_folder)) for s in self.data))

    @classmethod
    def from_checkpoint(cls, values: dict[str, Any]) -> TrainConfig:
        """The config a checkpoint stores; fields it predates take what it was trained with."""
        return cls.from_dict({**CONFIG_FIELDS_BEFORE, **values})

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainConfig:
        """Inverse of :meth:`to_dict` (and the reader of TOML files and checkpoints): unknown keys
        are an error, missing keys take defaults, lists are read as tuples, and the names of
        earlier releases (:data:`~anil_edge.runtime.legacy.RENAMED_CONFIG_FIELDS`) are read as their new names."""
        known = {f.name for f in fields(cls)}
        values = {RENAMED_CONFIG_FIELDS.get(k, k): v for k, v in values.items()}
        unknown = sorted(set(values) - known)
        if unknown:
            guesses = [f"{key!r}: did you mean {close[0]!r}?" for key in unknown
                       if (close := difflib.get_close_matches(key, known, n=1))]
            raise InputError(f"unknown training configuration key(s) {unknown}"
                             + (f" ({'; '.join(guesses)})" if guesses else "") + f"; expected some of {sorted(known)}")
        problems: list[str] = []
        config = from_document(cls, values, problems, defaults=True)
        raise_if_problems(problems, InputError, "invalid training configuration")
        return config  # type: ignore[return-value]  # read: no problems were found


def _portable(source: str, base: Path) -> str:
    path, base = Path(source).resolve(), base.resolve()
    common = Path(os.path.commonpath([path, base]))
    return os.path.relpath(path, base) if common != Path(common.anchor) else path.name
