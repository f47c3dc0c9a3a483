"""A labelled set of images held in memory as uint8 pixels at the backbone's input size."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import InputError


@dataclass(frozen=True, eq=False)
class ImageSet:
    """Images of ``n_classes`` classes, decoded once and kept in memory.

    ``groups`` names a larger unit per class (an Omniglot alphabet, a Unicode script, a
    folder's parent) so that splits can hold out whole groups. ``drawers``, where the data
    records it (Omniglot's ``<character>_<drawer>.png``), says who drew each image, so that
    evaluation can take a task's support and query images from different people.
    """

    images: np.ndarray  # (M, H, W, C) uint8, at the backbone's input size, not inverted
    labels: np.ndarray  # (M,) int64 class index in [0, n_classes)
    class_names: tuple[str, ...]  # (n_classes,) a readable name per class
    groups: tuple[str, ...]  # (n_classes,) the group each class belongs to
    drawers: np.ndarray | None = None  # (M,) int64 who drew each image (numbered within its group), or None

    def __post_init__(self) -> None:
        problems = []
        if self.images.dtype != np.uint8 or self.images.ndim != 4:
            problems.append(f"images must be uint8 (M, H, W, C), found {self.images.dtype} {self.images.shape}")
        if self.labels.shape != (self.images.shape[0],):
            problems.append(f"labels must be ({self.images.shape[0]},), found {self.labels.shape}")
        if len(self.groups) != len(self.class_names):
            problems.append(f"{len(self.groups)} groups for {len(self.class_names)} classes")
        if self.labels.size and (self.labels.min() < 0 or self.labels.max() >= len(self.class_names)):
            problems.append(f"labels must lie in [0, {len(self.class_names)}), found [{self.labels.min()}, {self.labels.max()}]")
        if self.drawers is not None and (self.drawers.dtype != np.int64 or self.drawers.shape != self.labels.shape):
            problems.append(f"drawers must be int64 {self.labels.shape}, found {self.drawers.dtype} {self.drawers.shape}")
        if problems:
            raise InputError("invalid image set: " + "; ".join(problems))

    @property
    def n_classes(self) -> int:
        return len(self.class_names)

    def class_sizes(self) -> np.ndarray:
        """Images per class, (n_classes,)."""
        return np.bincount(self.labels, minlength=self.n_classes)

    def sample_images(self, n: int, seed: int = 0) -> np.ndarray:
        """A fixed random subset of up to ``n`` images, in their stored order: (n, H, W, C) uint8."""
        pick = np.random.default_rng(seed).permutation(self.images.shape[0])[:n]
        return self.images[np.sort(pick)]

    def subset(self, classes: np.ndarray | list[int]) -> ImageSet:
        """The images of ``classes``, relabelled 0..len(classes)-1 in the given order."""
        classes = np.asarray(classes, dtype=np.int64)
        remap = np.full(self.n_classes, -1, np.int64)
        remap[classes] = np.arange(classes.size)
        keep = remap[self.labels] >= 0
        return ImageSet(
            images=self.images[keep],
            labels=remap[self.labels[keep]],
            class_names=tuple(self.class_names[c] for c in classes),
            groups=tuple(self.groups[c] for c in classes),
            drawers=None if self.drawers is None else self.drawers[keep],
        )

    def with_rotations(self, angles: tuple[int, ...] = (90, 180, 270)) -> ImageSet:
        """Each class plus its rotations by ``angles`` (multiples of 90°) as new classes (Omniglot's
        standard augmentation; Santoro et al., 2016). Class ``c`` rotated by the ``j``-th angle
        becomes class ``c + (j + 1) * n_classes``."""
        images, labels = [self.images], [self.labels]
        names, groups = list(self.class_names), list(self.groups)
        for j, angle in enumerate(angles):
            if angle % 90:
                raise InputError(f"rotations must be multiples of 90 degrees, found {angle}")
            images.append(np.rot90(self.images, k=angle // 90, axes=(1, 2)))
            labels.append(self.labels + (j + 1) * self.n_classes)
            names += [f"{n}@{angle}" for n in self.class_names]
            groups += list(self.groups)
        drawers = None if self.drawers is None else np.tile(self.drawers, len(angles) + 1)
        return ImageSet(np.ascontiguousarray(np.concatenate(images)), np.concatenate(labels), tuple(names),
                        tuple(groups), drawers)
