"""Meta-training data: labelled image sets, their class splits, and N-way K-shot task sampling.

An :class:`~anil_edge.train.data.image_set.ImageSet` holds decoded uint8 pixels at the model's
input size; tasks are drawn from it through learn2learn's ``TaskDataset``
(:mod:`anil_edge.train.data.tasks`).
"""

from .image_set import ImageSet
from .splits import Split, split_by_group

__all__ = ["ImageSet", "Split", "split_by_group"]
