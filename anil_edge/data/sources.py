"""The data set a :class:`~anil_edge.train.config.TrainConfig` names, loaded and split."""

from __future__ import annotations

from ..errors import InputError
from ..runtime.metadata import Preprocessing
from ..schema import DATASETS, FIXED_SPLIT_DATASETS
from .emoji import load_emoji
from .folder import count_class_folders, load_image_folder
from .image_set import ImageSet
from .learn2learn_formats import load_cifarfs, load_fc100, load_full_omniglot, load_mini_imagenet
from .omniglot import load_omniglot
from .splits import Split, split_by_group

FIXED_SPLITS = dict(zip(FIXED_SPLIT_DATASETS, (load_fc100, load_mini_imagenet, load_cifarfs)))


def check_ways_before_loading(dataset: str, sources: tuple[str, ...], ways: int, rotations: bool) -> None:
    """For a folder of classes, refuse tasks wider than its class folders allow (times four with
    rotation classes) before any image is decoded; the exact check, on the split's training
    classes, follows the load."""
    if dataset != "folder" or len(sources) != 1:
        return
    found = count_class_folders(sources[0])
    classes = found * (4 if rotations else 1)
    if 0 < classes < ways:
        rotated = f" x 4 rotations = {classes} classes" if rotations else ""
        raise InputError(f"--data {sources[0]}: {found} class folders{rotated}, but {ways}-way tasks need "
                         f"{ways} training classes: set fewer ways (--ways) or add classes")


def load_dataset(dataset: str, sources: tuple[str, ...], prep: Preprocessing) -> ImageSet:
    """Every class of a data set without fixed splits, decoded at ``prep``'s input size."""
    if dataset == "glyphs":
        return _glyphs(sources, prep)
    if not sources:
        raise InputError(f"dataset {dataset!r} needs a data source (--data): none given")
    if dataset == "omniglot":
        return load_omniglot(sources, prep)
    if dataset == "emoji":
        return load_emoji(sources, prep)
    if dataset in ("folder", "full-omniglot"):
        if len(sources) != 1:
            raise InputError(f"dataset {dataset!r} takes one root folder, found {len(sources)} sources")
        return (load_image_folder if dataset == "folder" else load_full_omniglot)(sources[0], prep)
    raise InputError(f"unknown dataset {dataset!r}: expected one of {DATASETS}")


def load_split(dataset: str, sources: tuple[str, ...], prep: Preprocessing, *, validation: float,
               test: float, seed: int) -> Split:
    """Train / validation / test classes: the data set's own split, or whole groups held out."""
    if dataset in FIXED_SPLITS:
        if len(sources) != 1:
            raise InputError(f"dataset {dataset!r} takes one --data root folder, found {len(sources)} sources")
        return FIXED_SPLITS[dataset](sources[0], prep)
    return split_by_group(load_dataset(dataset, sources, prep), validation=validation, test=test, seed=seed)


def _glyphs(sources: tuple[str, ...], prep: Preprocessing) -> ImageSet:
    """The embedded glyphs (rendered 28×28 grayscale; ``sources`` may name a cache folder)."""
    from .folder import count_class_folders
    from .glyphs import SIZE, load_glyphs

    photos = [s for s in sources if count_class_folders(s) > 0]
    if photos:  # the glyphs are the default data set: a user's image folders mean --dataset folder
        raise InputError(f"--data {photos[0]} holds class folders of images, but the data set is 'glyphs' (the "
                         "default, rendered, which takes no image folders): did you mean --dataset folder?")
    if prep.input_size != (SIZE, SIZE) or prep.channels != 1:
        raise InputError(f"the glyphs data set is {SIZE}x{SIZE} grayscale: expected --input-size {SIZE} "
                         f"--channels 1, found {prep.input_size[0]} and {prep.channels}")
    if len(sources) > 1:
        raise InputError(f"dataset 'glyphs' takes at most one cache folder, found {len(sources)} sources")
    return load_glyphs(cache_dir=sources[0] if sources else None)
