"""The data set a :class:`~anil_edge.train.config.TrainConfig` names, loaded and split."""

from __future__ import annotations

from ...errors import InputError
from ...runtime.metadata import Preprocessing
from .folder import load_image_folder
from .image_set import ImageSet
from .omniglot import load_omniglot
from .splits import Split, split_by_group


def load_dataset(dataset: str, sources: tuple[str, ...], prep: Preprocessing) -> ImageSet:
    """Every class of the named data set, decoded at ``prep``'s input size."""
    if not sources:
        raise InputError(f"dataset {dataset!r} needs a data source (--data): none given")
    if dataset == "omniglot":
        return load_omniglot(sources, prep)
    if dataset == "folder":
        if len(sources) != 1:
            raise InputError(f"dataset 'folder' takes one root folder, found {len(sources)} sources")
        return load_image_folder(sources[0], prep)
    raise InputError(f"unknown dataset {dataset!r}: expected 'omniglot' or 'folder'")


def load_split(dataset: str, sources: tuple[str, ...], prep: Preprocessing, *, validation: float,
               test: float, seed: int) -> Split:
    """Train / validation / test classes, whole groups held out."""
    return split_by_group(load_dataset(dataset, sources, prep), validation=validation, test=test, seed=seed)
