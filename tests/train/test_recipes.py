"""The default configuration is the last step of the recipe table, and the seed is learn2learn's."""

from __future__ import annotations

from dataclasses import fields

import pytest

from anil_edge.train.config import TrainConfig
from anil_edge.train.recipes import SEED, STEPS, VARIANT_BASE, recipe, variants


def test_default_config_is_the_final_recipe():
    final = recipe(STEPS[-1][0])
    defaults = TrainConfig()
    differ = {k: (v, getattr(defaults, k)) for k, v in final.items() if getattr(defaults, k) != v}
    # the recipes are Omniglot's (grayscale): unset rotations means rotations there
    assert differ == {"rotations": (True, None)} and TrainConfig(**final).uses_rotations == defaults.uses_rotations


def test_seed_recipe_is_the_tutorials():
    assert SEED["engine"] == "l2l" and SEED["adaptation_steps"] == 1 and SEED["meta_batch"] == 32
    assert SEED["queries"] == SEED["shots"] and SEED["head_init"] == "learned" and not SEED["augment"]
    assert SEED["sampler"] == "learn2learn"  # its Taskset
    names = {f.name for f in fields(TrainConfig)}
    assert all(set(changes) <= names for _, changes in STEPS) and set(SEED) <= names


@pytest.mark.parametrize("name", variants())
def test_every_variant_is_a_valid_configuration_changed_from_its_base(name):
    config = TrainConfig(**recipe(name))
    assert config != TrainConfig(**recipe(VARIANT_BASE))
    assert recipe("ways-60-cosine") == recipe(STEPS[-1][0])  # the variant that became the default


def test_an_unknown_recipe_names_the_known_ones():
    with pytest.raises(KeyError, match="strokes-cosine"):
        recipe("nope")
