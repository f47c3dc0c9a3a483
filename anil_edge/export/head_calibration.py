"""The device's head rule, chosen by measurement on validation classes (ANIL's inner loop,
Raghu et al., 2019, with the settings that fine-tuning on frozen features needs: Tian et al.,
2020; Hu et al., 2022 pick theirs per domain on validation episodes, and sometimes pick none).

Through the exported model itself, on classes it never trained on, under the deployment
protocols (:func:`protocols`: within one group, support and query by different drawers where
the data records drawers, 1-shot and k-shot), every candidate rule (:func:`candidates`) adapts
the head with the runtime's own code (:func:`anil_edge.runtime.episodes.predict_episodes`):

1. the best rule is *selected* on one set of episodes (mean accuracy over the protocols);
2. its gain over the nearest class mean (the prototype start, 0 steps) is *measured* on a second,
   independent set, paired episode by episode;
3. it ships only if that gain is positive with 95% confidence; otherwise the model ships the
   nearest class mean, which is also the fastest rule.

The scale, rate and pull are given relative to the embeddings' mean squared norm ``s²``: a
logit moves by about ``lr · s²`` per unit of gradient, and the prototype head's logits are of
order ``scale · s²``.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from ..data.image_set import ImageSet
from ..data.tasks import TaskIndices, fixed_tasks
from ..errors import InputError
from ..runtime.adaptation import Adaptation, HeadCalibration
from ..runtime.episodes import predict_episodes
from ..runtime.metadata import LearnedHead

EPISODES = 200  # per protocol and per set (selection, measurement)
WAYS = (5, 20)  # classes per validation episode (each where the data has enough)
SHOTS = (1, 3)  # support images per class: 1-shot and k-shot
QUERIES = 1  # query images per class and episode
SCALES = (1.0, 4.0)  # the start's logit scale, × 1/s²
RATES = (16.0, 32.0, 64.0, 128.0)  # the step size, × 1/s²
STEPS = (25, 50, 100)
PULLS = (0.0, 0.5)  # lr · decay · steps: how far the pull toward the start reaches over the steps
SELECT_SEED, MEASURE_SEED = 11, 12


@dataclass(frozen=True)
class Protocol:
    """One kind of validation episode."""

    ways: int
    shots: int
    within_group: bool
    distinct_drawers: bool

    def describe(self) -> str:
        modes = [m for m, on in (("within group", self.within_group), ("distinct drawers", self.distinct_drawers)) if on]
        return f"{self.ways}-way {self.shots}-shot" + (f" {', '.join(modes)}" if modes else "")


def nearest_mean(base: Adaptation) -> Adaptation:
    """The nearest-class-mean rule: the prototype start and no steps."""
    return Adaptation(adaptation_lr=base.adaptation_lr, adaptation_steps=0, head_init="prototype")


def candidates(base: Adaptation, sq_norm: float) -> list[Adaptation]:
    """The rules tried: the nearest class mean, the rule the model trained with, and the grid."""
    rules = [nearest_mean(base), base]
    for scale, rate, steps, pull in itertools.product(SCALES, RATES, STEPS, PULLS):
        lr = rate / sq_norm
        rules.append(Adaptation(adaptation_lr=lr, adaptation_steps=steps, head_init="prototype",
                                head_scale=scale / sq_norm, head_decay=pull / (lr * steps)))
    return list(dict.fromkeys(rules))  # the trained rule may be the nearest class mean


def protocols(data: ImageSet) -> list[tuple[Protocol, np.ndarray]]:
    """Each protocol this data can supply, with the classes (indices) that have enough images for
    it: within one group and by distinct drawers where possible, else the nearest weaker form."""
    found = []
    sizes = data.class_sizes()
    for ways, shots in itertools.product(WAYS, SHOTS):
        keep = np.flatnonzero(sizes >= shots + QUERIES)
        usable = data.subset(keep)
        for within, distinct in ((True, True), (True, False), (False, True), (False, False)):
            if distinct and usable.drawers is None:
                continue
            protocol = Protocol(ways, shots, within, distinct)
            if _drawable(usable, protocol):
                found.append((protocol, keep))
                break
    return found


def _drawable(data: ImageSet, protocol: Protocol) -> bool:
    try:
        _tasks(data, protocol, episodes=1, seed=0)
    except InputError:
        return False
    return True


def _tasks(data: ImageSet, protocol: Protocol, episodes: int, seed: int) -> TaskIndices:
    return fixed_tasks(data, ways=protocol.ways, shots=protocol.shots, queries=QUERIES, tasks=episodes, seed=seed,
                       name="head calibration", within_group=protocol.within_group,
                       distinct_drawers=protocol.distinct_drawers)


def protocol_episodes(embeddings: np.ndarray, data: ImageSet, protocol: Protocol, keep: np.ndarray, episodes: int,
                      seeds: tuple[int, ...]) -> tuple[np.ndarray, list[TaskIndices]]:
    """The embeddings of classes ``keep`` of ``data``, and a set of ``protocol``'s episodes on them
    per seed. The subset keeps the images' order, so its embeddings are a mask away."""
    usable = data.subset(keep)
    return embeddings[np.isin(data.labels, keep)], [_tasks(usable, protocol, episodes, seed) for seed in seeds]


def episode_accuracy(E: np.ndarray, tasks: TaskIndices, ways: int, rule: Adaptation,
                     learned: LearnedHead) -> np.ndarray:
    """Per-episode query accuracy (T,) with ``rule``, through the runtime's episode code."""
    return (predict_episodes(E, tasks, ways, rule, learned) == tasks.query_labels).mean(axis=1)


EpisodeSets = list[tuple[Protocol, np.ndarray, list[TaskIndices]]]  # per protocol: its embeddings, [selection, measurement]


def validation_sets(embeddings: np.ndarray, data: ImageSet, episodes: int) -> EpisodeSets:
    """Each protocol ``data`` can supply, with its classes' embeddings and two independent sets of
    its episodes: one to select on, one to measure on. Empty when it can supply none."""
    return [(protocol, *protocol_episodes(embeddings, data, protocol, keep, episodes, (SELECT_SEED, MEASURE_SEED)))
            for protocol, keep in protocols(data)]


def paired_ci95(diff: np.ndarray) -> float:
    """Half-width of the 95% confidence interval of the mean of paired differences ``diff`` (T,)."""
    return float(1.96 * diff.std(ddof=1) / np.sqrt(diff.size)) if diff.size > 1 else float("inf")


def calibrate_head(embeddings: np.ndarray, data: ImageSet, base: Adaptation, learned: LearnedHead,
                   episodes: int = EPISODES) -> tuple[Adaptation, HeadCalibration] | None:
    """The head rule to ship for embeddings (M, D) of ``data`` (validation classes), and how it was
    chosen; None when ``data`` cannot supply any protocol's episodes."""
    sets = validation_sets(embeddings, data, episodes)
    if not sets:
        return None
    sq_norm = float(np.mean(np.einsum("md,md->m", embeddings, embeddings)))
    rules = candidates(base, max(sq_norm, 1e-12))

    def scores(rule: Adaptation, which: int) -> np.ndarray:  # (episodes,) mean over the protocols
        return np.mean([episode_accuracy(E, tasks[which], p.ways, rule, learned) for p, E, tasks in sets], axis=0)

    best = max(rules, key=lambda rule: (scores(rule, 0).mean(), -rule.adaptation_steps))
    reference, chosen = scores(rules[0], 1), scores(best, 1)
    diff = chosen - reference
    ci95 = paired_ci95(diff)
    ships = best if diff.mean() > ci95 else rules[0]
    record = HeadCalibration(tuple(p.describe() for p, _, _ in sets), episodes, len(rules), float(reference.mean()),
                             best.describe(), float(chosen.mean()), ci95 if np.isfinite(ci95) else 0.0)
    return ships, record
