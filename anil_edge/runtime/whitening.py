"""The record of an exported model's within-class whitening: how the export chose it.

A device enrolls a class from one drawer's images (a designer's emoji, a person's handwriting, a
product photographed in one light) and meets it drawn by another. The embedding's directions that
change with the drawer rather than the class are shared across classes, so the training classes
measure them: their within-class scatter ``S_w``. The export can end the embedding graph with
``z ↦ s · normalize((z − m) A)``, ``A = (S_w + λ·tr(S_w)/D · I)^(-1/2)`` (Fisher's discriminant
with a shrunk pooled covariance; the nearest class mean in the whitened space is the Mahalanobis
nearest mean of Bateni et al., 2020, "Improved Few-Shot Visual Classification", with one
covariance estimated on the training classes), so every client (numpy, Node, the browser) runs it
as part of the backbone. It ships only where it measures better on the validation classes
(:mod:`anil_edge.export.whitening`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..errors import InputError, raise_if_problems


@dataclass(frozen=True)
class WhiteningCalibration:
    """How the export chose whether the backbone ends with the whitening: the nearest class mean's
    accuracy on validation episodes under the deployment protocols, without it and with the best
    shrinkage found. It ships when the mean gain exceeds ``gain_ci95`` and no protocol loses."""

    fit_images: int  # training-class images whose within-class scatter was measured
    fit_classes: int  # their classes
    protocols: tuple[str, ...]  # the episode kinds scored, e.g. "5-way 1-shot within group, distinct drawers"
    episodes: int  # episodes per protocol, in each of the selection and the measurement sets
    shrinkage: float  # λ of the best candidate (the selection set's)
    candidates: int  # shrinkages tried
    plain_accuracy: float  # mean accuracy over the protocols without whitening (measurement set)
    whitened_accuracy: float  # with the chosen shrinkage (measurement set)
    gain_ci95: float  # half-width of the 95% CI of the gain (paired over episodes)
    worst_protocol_gain: float  # the smallest per-protocol gain (measurement set)

    def __post_init__(self) -> None:
        problems = [f"{name} must lie in [0, 1], found {value!r}" for name, value in
                    (("plain_accuracy", self.plain_accuracy), ("whitened_accuracy", self.whitened_accuracy))
                    if not (math.isfinite(value) and 0 <= value <= 1)]
        problems += [f"{name} must be a finite number >= 0, found {value!r}" for name, value in
                     (("gain_ci95", self.gain_ci95), ("shrinkage", self.shrinkage))
                     if not (math.isfinite(value) and value >= 0)]
        if not (math.isfinite(self.worst_protocol_gain) and abs(self.worst_protocol_gain) <= 1):
            problems.append(f"worst_protocol_gain must lie in [-1, 1], found {self.worst_protocol_gain!r}")
        if min(self.fit_images, self.fit_classes, self.episodes, self.candidates, len(self.protocols)) < 1:
            problems.append(f"fit_images, fit_classes, episodes, candidates and protocols must be >= 1, found "
                            f"{self.fit_images}, {self.fit_classes}, {self.episodes}, {self.candidates}, "
                            f"{len(self.protocols)}")
        raise_if_problems(problems, InputError, "invalid whitening calibration")

    @property
    def gain(self) -> float:
        """Accuracy (a fraction) the whitening gains over the plain embedding."""
        return self.whitened_accuracy - self.plain_accuracy

    @property
    def pays(self) -> bool:
        """Whether it ships: a gain positive with 95% confidence, and no protocol worse."""
        return self.gain > self.gain_ci95 and self.worst_protocol_gain >= 0

    def summary(self) -> str:
        """One line for people."""
        verdict = "applied" if self.pays else "not applied (" + (
            "a protocol loses" if self.gain > self.gain_ci95 else "no significant gain") + ")"
        return (f"within-class whitening fitted on {self.fit_images} images of {self.fit_classes} training classes, "
                f"scored on {self.episodes} validation episodes each of {'; '.join(self.protocols)}: nearest class "
                f"mean {100 * self.plain_accuracy:.1f}% plain, {100 * self.whitened_accuracy:.1f}% whitened "
                f"(shrinkage {self.shrinkage:g}; {100 * self.gain:+.1f} ± {100 * self.gain_ci95:.1f} points, worst "
                f"protocol {100 * self.worst_protocol_gain:+.1f}): {verdict}")
