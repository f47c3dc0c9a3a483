"""The export's head-rule calibration (anil_edge/export/head_calibration.py) on constructed
embeddings: it keeps the nearest class mean where steps cannot help (isotropic classes, for
which the nearest mean is the Bayes rule) and ships steps where they do (a large nuisance
spread that the class means carry into every distance and a fitted head learns to down-weight)."""

from __future__ import annotations

import numpy as np
import pytest

from anil_edge.export.head_calibration import calibrate_head, protocols
from anil_edge.runtime.adaptation import Adaptation
from anil_edge.runtime.metadata import LearnedHead
from tests.synthetic import nuisance_embeddings

LEARNED = LearnedHead(np.zeros((5, 16), np.float32), np.zeros(5, np.float32))


@pytest.mark.parametrize("nuisance, steps", [(0.5, False), (2.0, True)])
def test_calibration_ships_steps_only_where_they_beat_the_nearest_mean(nuisance, steps):
    E, data = nuisance_embeddings(nuisance)
    rule, record = calibrate_head(E, data, Adaptation(), LEARNED, episodes=100)
    assert (rule.adaptation_steps > 0) is steps and record.pays is steps
    if steps:  # the measured gain clears its own 95% interval, and the shipped rule is the one measured
        assert record.gain > record.gain_ci95 > 0 and record.best_rule == rule.describe()
    else:
        assert rule.nearest_mean and "ships the nearest class mean" in record.summary()
    assert record.protocols == ("5-way 1-shot within group", "5-way 3-shot within group",
                                "20-way 1-shot within group", "20-way 3-shot within group")


def test_protocols_fall_back_to_what_the_data_can_supply():
    _, data = nuisance_embeddings(0.5, classes=8, per_class=2)  # 2 images a class: no 3-shot, no 20-way
    assert [p.describe() for p, _ in protocols(data)] == ["5-way 1-shot within group"]
    _, tiny = nuisance_embeddings(0.5, classes=3)
    assert protocols(tiny) == [] and calibrate_head(np.zeros((18, 16), np.float32), tiny, Adaptation(), LEARNED) is None
