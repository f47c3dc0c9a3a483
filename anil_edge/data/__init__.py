"""Data, in numpy (no torch), for every stage: the data sets and their decoding, class splits,
fixed N-way K-shot task sets and their scoring. Training, export, evaluation and the benchmarks
all read it; a device install can rebuild the held-out classes a model was scored on.

An :class:`~anil_edge.data.image_set.ImageSet` holds decoded uint8 pixels at the model's
input size. The torch samplers that draw training tasks from it are in :mod:`anil_edge.train`.
"""

from .image_set import ImageSet
from .splits import Split, split_by_group

__all__ = ["ImageSet", "Split", "split_by_group"]
