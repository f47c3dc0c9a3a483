"""Within-class whitening of the embeddings: fitted on the training classes, shipped where the
validation classes measure it better (why and what it computes: :mod:`anil_edge.runtime.whitening`).

1. The within-class scatter ``S_w`` (D, D) of the training classes' embeddings is measured, and
   for each shrinkage λ in :data:`SHRINKAGES` the map ``z ↦ s · normalize((z − m) A_λ)``,
   ``A_λ = (S_w + λ·tr(S_w)/D · I)^(-1/2)``, is built; ``s`` keeps the embeddings' mean norm.
2. On the validation classes, under the head calibration's deployment protocols
   (:func:`anil_edge.export.head_calibration.validation_sets`), the nearest class mean is scored
   with each map: the best λ is *selected* on one set of episodes, and its gain over the plain
   embedding *measured* on another, paired episode by episode.
3. It ships when that gain is positive with 95% confidence and no protocol loses: a map that
   helps 20-way tasks at the cost of 1-shot ones is not shipped.

The map ends the backbone (:class:`anil_edge.train.backbones.Whitened`) before the ONNX export,
so every file and client computes it as part of the embedding.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..data.image_set import ImageSet
from ..runtime.adaptation import Adaptation
from ..runtime.metadata import LearnedHead
from ..runtime.whitening import WhiteningCalibration
from .head_calibration import EPISODES, episode_accuracy, nearest_mean, paired_ci95, validation_sets

SHRINKAGES = (0.1, 0.3, 1.0, 3.0)  # λ, in units of the mean within-class variance tr(S_w)/D
MAX_FIT_IMAGES = 8192  # training-class images embedded to measure S_w (whole classes of >= 2 images)
NORM_FLOOR = 1e-12  # squared norms below this are not divided by (as the cosine embedding's clamp)
NEAREST_MEAN = nearest_mean(Adaptation())


@dataclass(frozen=True, eq=False)
class Whitening:
    """The map ``z ↦ scale · normalize((z − mean) @ matrix)`` on embeddings (N, D)."""

    mean: np.ndarray  # (D,) float32: the training embeddings' mean
    matrix: np.ndarray  # (D, D) float32, symmetric: (S_w + λ·tr(S_w)/D · I)^(-1/2)
    scale: float  # the output norm: the training embeddings' mean norm

    def apply(self, E: np.ndarray) -> np.ndarray:
        """The whitened embeddings (N, D) float32 of ``E`` (N, D)."""
        z = (E.astype(np.float32) - self.mean) @ self.matrix
        squares = np.maximum(np.einsum("nd,nd->n", z, z), NORM_FLOOR)[:, None]
        return (z * (np.float32(self.scale) / np.sqrt(squares))).astype(np.float32)


def fit_sample(data: ImageSet, limit: int = MAX_FIT_IMAGES, seed: int = 0) -> ImageSet:
    """Whole classes of ``data`` with two or more images, in a fixed random order, up to ``limit``
    images in all: the images whose within-class scatter is measured."""
    sizes = data.class_sizes()
    order = np.random.default_rng(seed).permutation(np.flatnonzero(sizes >= 2))
    taken = order[np.cumsum(sizes[order]) <= limit]
    return data.subset(np.sort(taken))


def fit_whitening(E: np.ndarray, labels: np.ndarray, shrinkage: float) -> Whitening:
    """The whitening of embeddings ``E`` (M, D) of classes ``labels`` (M,), shrunk by ``shrinkage``."""
    E = E.astype(np.float64)
    classes, index = np.unique(labels, return_inverse=True)
    means = np.zeros((classes.size, E.shape[1]))
    np.add.at(means, index, E)
    means /= np.bincount(index)[:, None]
    R = E - means[index]
    scatter = R.T @ R / E.shape[0]
    scatter += shrinkage * max(np.trace(scatter) / E.shape[1], NORM_FLOOR) * np.eye(E.shape[1])
    w, V = np.linalg.eigh(scatter)
    matrix = (V * w ** -0.5) @ V.T
    scale = float(np.mean(np.linalg.norm(E, axis=1)))
    return Whitening(E.mean(axis=0).astype(np.float32), matrix.astype(np.float32), scale)


def calibrate_whitening(fit_embeddings: np.ndarray, fit_labels: np.ndarray, embeddings: np.ndarray, data: ImageSet,
                        episodes: int = EPISODES) -> tuple[Whitening, WhiteningCalibration] | None:
    """The best whitening fitted on ``fit_embeddings`` (M, D) of training classes ``fit_labels``,
    and how it scored on ``embeddings`` (N, D) of the validation classes ``data`` (ship it when
    ``record.pays``); None when ``data`` cannot supply any protocol's episodes."""
    plain = validation_sets(embeddings, data, episodes)
    if not plain:
        return None
    fits = {lam: fit_whitening(fit_embeddings, fit_labels, lam) for lam in SHRINKAGES}
    learned = LearnedHead(np.zeros((1, embeddings.shape[1]), np.float32), np.zeros(1, np.float32))  # unused

    def scores(sets, which: int) -> np.ndarray:  # (protocols, episodes)
        return np.stack([episode_accuracy(E, tasks[which], p.ways, NEAREST_MEAN, learned) for p, E, tasks in sets])

    whitened = {lam: [(p, w.apply(E), tasks) for p, E, tasks in plain] for lam, w in fits.items()}  # row-wise map
    best = max(SHRINKAGES, key=lambda lam: scores(whitened[lam], 0).mean())
    reference, chosen = scores(plain, 1), scores(whitened[best], 1)
    diff = (chosen - reference).mean(axis=0)
    ci95 = paired_ci95(diff)
    record = WhiteningCalibration(
        int(fit_labels.size), int(np.unique(fit_labels).size), tuple(p.describe() for p, _, _ in plain), episodes,
        best, len(SHRINKAGES), float(reference.mean()), float(chosen.mean()), ci95 if np.isfinite(ci95) else 0.0,
        float((chosen - reference).mean(axis=1).min()))
    return fits[best], record


def append_to_graph(model, whitening: Whitening) -> None:
    """End the ONNX backbone ``model`` (a ModelProto, changed in place) with ``whitening`` in
    float32, in the operators :class:`anil_edge.train.backbones.Whitened` exports: how an INT8
    model, quantized and checked before the map (whose amplified low-variance directions would
    hide its rounding's effect on decisions), gets the map the FP32 model ends with."""
    from onnx import helper, numpy_helper

    from .onnx_export import OUTPUT_NAME

    graph, D = model.graph, whitening.mean.size
    pre = "whitening_input"
    for node in graph.node:
        node.output[:] = [pre if name == OUTPUT_NAME else name for name in node.output]
    constants = {"whitening_mean": whitening.mean, "whitening_matrix": whitening.matrix,
                 "whitening_ones": np.ones((D, 1), np.float32), "whitening_floor": np.float32(NORM_FLOOR),
                 "whitening_scale": np.float32(whitening.scale)}
    graph.initializer.extend(numpy_helper.from_array(np.asarray(v, np.float32), k) for k, v in constants.items())
    graph.node.extend([
        helper.make_node("Sub", [pre, "whitening_mean"], ["whitening_centred"]),
        helper.make_node("MatMul", ["whitening_centred", "whitening_matrix"], ["whitening_z"]),
        helper.make_node("Mul", ["whitening_z", "whitening_z"], ["whitening_z2"]),
        helper.make_node("MatMul", ["whitening_z2", "whitening_ones"], ["whitening_sq"]),
        helper.make_node("Max", ["whitening_sq", "whitening_floor"], ["whitening_sq_floor"]),
        helper.make_node("Sqrt", ["whitening_sq_floor"], ["whitening_norm"]),
        helper.make_node("Div", ["whitening_scale", "whitening_norm"], ["whitening_gain"]),
        helper.make_node("Mul", ["whitening_z", "whitening_gain"], [OUTPUT_NAME]),
    ])
