"""ANIL's inner loop as one setting, used unchanged at every stage (Raghu et al., 2019).

A task's head starts by a rule (``head_init``), scaled by ``head_scale``, and takes
``adaptation_steps`` SGD steps of size ``adaptation_lr`` on the support set's softmax
cross-entropy plus an L2 pull ``head_decay/2 · ‖θ − θ₀‖²`` toward that start θ₀ = (W₀, b₀):

    θ ← θ − lr · (∇CE(θ) + head_decay · (θ − θ₀))

``head_scale`` is the logit scale (inverse temperature) of the start: on embeddings of norm
≈ √D the unscaled prototype head already fits the support set with a loss near zero, so its
gradient, and every step, is near zero (the steps then change no answer). The export picks
the scale, rate, steps and pull that maximise accuracy on validation episodes
(:mod:`anil_edge.export.head_calibration`), and ships 0 steps where none beats the nearest
class mean. The names are
learn2learn's (``MAML(lr=adaptation_lr)``, ``adaptation_steps``): ``TrainConfig`` produces an
:class:`Adaptation`, the export writes it into the model's metadata, the runtime reads it back,
and :class:`~anil_edge.runtime.classifier.FewShotClassifier` runs it. Each setting is
validated here and nowhere else.

Head initialisation rules (one list for training and devices):

- ``"prototype"``: ``W_c = 2·μ_c``, ``b_c = −‖μ_c‖²`` with ``μ_c`` the class's mean support
  embedding — a nearest-prototype classifier before any step (Proto-MAML; Triantafillou et
  al., 2020, "Meta-Dataset");
- ``"zeros"``: ``W = 0``, ``b = 0`` — the steps do all the work;
- ``"learned"``: the meta-learned head. Training tasks have exactly ``ways`` classes and start
  from its rows; a device's enrolled classes have no order in common with them, so there every
  row starts as the mean learned row (and the mean bias).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from numbers import Integral, Real
from typing import Any

from ..errors import InputError, raise_if_problems

HEAD_INITS = ("prototype", "zeros", "learned")
MAX_ADAPTATION_STEPS = 1000  # beyond this an adaptation would stall a device for seconds
MAX_ADAPTATION_LR = 1000.0  # beyond this float32 logits overflow after a single step
MAX_HEAD_SCALE = 1000.0  # the starting head's logit scale: beyond this float32 logits overflow


def lr_problems(value: Any, name: str = "adaptation_lr") -> list[str]:
    """Why ``value`` is not a usable inner-loop learning rate (empty when it is)."""
    if isinstance(value, bool) or not isinstance(value, Real):
        return [f"{name} must be a number, found {type(value).__name__} {value!r:.40}"]
    if not (math.isfinite(value) and 0 <= float(value) <= MAX_ADAPTATION_LR):
        return [f"{name} must be a finite number in [0, {MAX_ADAPTATION_LR:g}], found {value!r}"]
    return []


def steps_problems(value: Any, name: str = "adaptation_steps") -> list[str]:
    """Why ``value`` is not a usable step count (empty when it is)."""
    if isinstance(value, bool) or not isinstance(value, Integral):
        return [f"{name} must be an integer, found {type(value).__name__} {value!r:.40}"]
    if not 0 <= int(value) <= MAX_ADAPTATION_STEPS:
        return [f"{name} must lie in [0, {MAX_ADAPTATION_STEPS}], found {value}"]
    return []


def scale_problems(value: Any) -> list[str]:
    """Why ``value`` is not a usable starting-head scale (empty when it is)."""
    if isinstance(value, bool) or not isinstance(value, Real):
        return [f"head_scale must be a number, found {type(value).__name__} {value!r:.40}"]
    if not (math.isfinite(value) and 0 < float(value) <= MAX_HEAD_SCALE):
        return [f"head_scale must be a finite number in (0, {MAX_HEAD_SCALE:g}], found {value!r}"]
    return []


def decay_problems(value: Any, lr: Any) -> list[str]:
    """Why ``value`` is not a usable pull toward the start at learning rate ``lr`` (empty when it
    is): ``lr · head_decay`` above 1 would overshoot the start at every step."""
    if isinstance(value, bool) or not isinstance(value, Real):
        return [f"head_decay must be a number, found {type(value).__name__} {value!r:.40}"]
    if not (math.isfinite(value) and float(value) >= 0):
        return [f"head_decay must be a finite number >= 0, found {value!r}"]
    if not lr_problems(lr) and float(lr) * float(value) > 1:
        return [f"adaptation_lr × head_decay must be <= 1 (else each step overshoots the starting head), found "
                f"{lr!r} × {value!r} = {float(lr) * float(value):g}"]
    return []


def head_init_problems(value: Any, name: str = "head_init") -> list[str]:
    """Why ``value`` is not a head initialisation rule (empty when it is)."""
    if value not in HEAD_INITS or not isinstance(value, str):
        return [f"{name} must be one of {HEAD_INITS}, found {value!r:.40}"]
    return []


@dataclass(frozen=True)
class Adaptation:
    """How a task's head is started and adapted; valid by construction."""

    adaptation_lr: float = 0.5  # inner-loop SGD learning rate
    adaptation_steps: int = 5  # inner-loop SGD steps
    head_init: str = "prototype"  # starting head: "prototype", "zeros" or "learned" (see the module doc)
    head_scale: float = 1.0  # the starting head's logit scale (inverse temperature), > 0
    head_decay: float = 0.0  # L2 pull toward the starting head, >= 0 (0: plain SGD)

    def __post_init__(self) -> None:
        problems = (lr_problems(self.adaptation_lr) + steps_problems(self.adaptation_steps)
                    + head_init_problems(self.head_init) + scale_problems(self.head_scale)
                    + decay_problems(self.head_decay, self.adaptation_lr))
        raise_if_problems(problems, InputError, "invalid adaptation settings")
        for name in ("adaptation_lr", "head_scale", "head_decay"):  # np.float32(0.5) -> 0.5
            object.__setattr__(self, name, float(getattr(self, name)))
        object.__setattr__(self, "adaptation_steps", int(self.adaptation_steps))  # np.int64(5) -> 5

    @property
    def nearest_mean(self) -> bool:
        """True when this rule is a nearest-class-mean classifier: the prototype start, no steps."""
        return self.head_init == "prototype" and self.adaptation_steps == 0

    def describe(self) -> str:
        """One line for people: the rule and its settings."""
        if self.adaptation_steps == 0:
            return f"{self.head_init} start, 0 steps" + (" (nearest class mean)" if self.nearest_mean else "")
        pull = f", pull {self.head_decay:g}" if self.head_decay else ""
        return (f"{self.head_init} start × {self.head_scale:.4g}, {self.adaptation_steps} steps of lr "
                f"{self.adaptation_lr:.4g}{pull}")


@dataclass(frozen=True)
class HeadCalibration:
    """How the export chose the model's head rule: accuracy on validation episodes under the
    deployment protocols, the best rule found against the nearest class mean (0 steps). The
    model ships the best rule when its gain exceeds ``gain_ci95``, else the nearest class mean."""

    protocols: tuple[str, ...]  # the episode kinds scored, e.g. "5-way 1-shot within group, distinct drawers"
    episodes: int  # episodes per protocol, in each of the selection and the measurement sets
    candidates: int  # head rules tried
    nearest_mean_accuracy: float  # mean accuracy over the protocols with 0 steps (measurement set)
    best_rule: str  # the rule the selection set picked (Adaptation.describe())
    best_accuracy: float  # its mean accuracy over the protocols (measurement set)
    gain_ci95: float  # half-width of the 95% CI of its gain (paired over episodes)

    def __post_init__(self) -> None:
        problems = [f"{name} must lie in [0, 1], found {value!r}" for name, value in
                    (("nearest_mean_accuracy", self.nearest_mean_accuracy), ("best_accuracy", self.best_accuracy))
                    if not (math.isfinite(value) and 0 <= value <= 1)]
        if not (math.isfinite(self.gain_ci95) and self.gain_ci95 >= 0):
            problems.append(f"gain_ci95 must be a finite number >= 0, found {self.gain_ci95!r}")
        if self.episodes < 1 or self.candidates < 1 or not self.protocols:
            problems.append(f"episodes, candidates and protocols must be >= 1, found {self.episodes}, "
                            f"{self.candidates}, {len(self.protocols)}")
        raise_if_problems(problems, InputError, "invalid head calibration")

    @property
    def gain(self) -> float:
        """Accuracy (a fraction) the best rule gains over the nearest class mean."""
        return self.best_accuracy - self.nearest_mean_accuracy

    @property
    def pays(self) -> bool:
        """Whether the gain is positive with 95% confidence (the best rule ships)."""
        return self.gain > self.gain_ci95

    def summary(self) -> str:
        """One line for people."""
        verdict = "ships it" if self.pays else "ships the nearest class mean (0 steps)"
        return (f"head rule calibrated on {self.episodes} validation episodes each of {'; '.join(self.protocols)}: "
                f"nearest class mean {100 * self.nearest_mean_accuracy:.1f}%, best of {self.candidates} rules "
                f"({self.best_rule}) {100 * self.best_accuracy:.1f}% ({100 * self.gain:+.1f} ± "
                f"{100 * self.gain_ci95:.1f} points): {verdict}")
