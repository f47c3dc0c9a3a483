"""A training checkpoint as the export stage needs it: the eval-mode model and what it was
trained with (preprocessing, inner loop, task shape, data)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

from ..errors import ModelError, raise_if_problems, require
from ..runtime.adaptation import Adaptation
from ..runtime.documents import from_document
from ..runtime.legacy import CHECKPOINT_PREPROCESSING_BEFORE
from ..runtime.metadata import LearnedHead, Preprocessing, TrainingInfo

if TYPE_CHECKING:
    from ..train.config import TrainConfig
    from ..train.model import AnilModel


@dataclass(frozen=True, eq=False)
class TrainedModel:
    model: AnilModel  # in eval mode, on the CPU, float32
    config: TrainConfig  # the configuration it was trained with
    preprocessing: Preprocessing  # how images were normalised in training
    iteration: int  # meta-iterations done when the checkpoint was written

    @property
    def adaptation(self) -> Adaptation:
        return self.config.adaptation()

    @property
    def learned_head(self) -> LearnedHead:
        return self.model.learned_head()

    def training(self, model_folder: str | os.PathLike[str] = ".") -> TrainingInfo:
        """The training record an exported model carries, its data sources relative to the folder
        it is exported to (:meth:`TrainConfig.shipped_provenance`)."""
        return TrainingInfo(self.config.ways, self.config.shots, self.config.shipped_provenance(model_folder))


def load_trained(path: str | os.PathLike[str]) -> TrainedModel:
    """Rebuild the model a checkpoint was trained as and load its weights (``weights_only``)."""
    require("torch", "train")
    from ..train.checkpoint import CheckpointError, checkpoint_iteration, load_checkpoint
    from ..train.config import TrainConfig
    from ..train.model import build_model
    from ..train.pretrained import state_dict_mismatches

    payload = load_checkpoint(path)
    try:
        config = TrainConfig.from_checkpoint(payload["config"])
        prep = payload["preprocessing"]
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"{path}: incomplete checkpoint ({type(exc).__name__}: {exc})") from None
    problems: list[str] = []
    before = CHECKPOINT_PREPROCESSING_BEFORE
    preprocessing = from_document(Preprocessing, {**before, **prep} if isinstance(prep, dict) else prep, problems,
                                  "preprocessing")
    raise_if_problems(problems, CheckpointError, f"{path}: incomplete checkpoint")
    model = build_model(config)
    missing, unexpected, wrong = state_dict_mismatches(model.state_dict(), payload.get("model", {}))
    if missing or unexpected or wrong:
        raise ModelError(
            f"{path}: the weights do not fit the {config.backbone} architecture its config describes: "
            + "; ".join(p for p in (_list("missing", missing), _list("unexpected", unexpected),
                                    _list("wrong shape", wrong)) if p))
    model.load_state_dict(payload["model"])
    model.eval()
    return TrainedModel(model, config, cast(Preprocessing, preprocessing), checkpoint_iteration(payload, path))


def _list(what: str, items: list[str]) -> str:
    if not items:
        return ""
    more = f" and {len(items) - 5} more" if len(items) > 5 else ""
    return f"{what}: {', '.join(items[:5])}{more}"
