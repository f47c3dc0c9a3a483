"""ANIL's inner loop as one setting, used unchanged at every stage (Raghu et al., 2019).

A task's head starts by a rule (``head_init``) and takes ``adaptation_steps`` plain SGD steps
of size ``adaptation_lr`` on the support set's softmax cross-entropy. The names are
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

    def __post_init__(self) -> None:
        problems = (lr_problems(self.adaptation_lr) + steps_problems(self.adaptation_steps)
                    + head_init_problems(self.head_init))
        raise_if_problems(problems, InputError, "invalid adaptation settings")
        object.__setattr__(self, "adaptation_lr", float(self.adaptation_lr))  # np.float32(0.5) -> 0.5
        object.__setattr__(self, "adaptation_steps", int(self.adaptation_steps))  # np.int64(5) -> 5
