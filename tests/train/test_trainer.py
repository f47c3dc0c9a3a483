"""The outer loop on a tiny model: outputs, exact resume, checkpoint safety."""

from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("learn2learn")

from anil_edge.data.splits import split_by_group
from anil_edge.errors import InputError
from anil_edge.train.checkpoint import CheckpointError, load_checkpoint
from anil_edge.train.config import TrainConfig
from anil_edge.train.trainer import train
from tests.train.helpers import tiny_config

from .helpers import glyph_set


def test_training_writes_checkpoints_metrics_and_plot(split, tmp_path):
    result = train(tiny_config(tmp_path), split)
    assert {"last.pt", "best.pt", "metrics.jsonl", "curves.png"} <= {p.name for p in tmp_path.iterdir()}
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    train_records = [r for r in records if r["split"] == "train"]
    # one record per window ending at a log (10), validation (3) or checkpoint (2) boundary, or the end
    assert [r["iteration"] for r in train_records] == [1, 2, 3, 5]
    assert [r["iterations"] for r in train_records] == [2, 1, 1, 2]
    assert [r["iteration"] for r in records if r["split"] == "validation"] == [2, 5]
    # the validation groups have 4 classes each: within-group 3-way tasks are scored beside mixed ones
    assert all(0 <= r["within_group_accuracy"] <= 1 for r in records if r["split"] == "validation")
    assert all(np.isfinite(r["loss"]) for r in records if r["split"] == "train")
    # best.pt is chosen by the deployment protocol's score (within group), not the random tasks'
    within = {r["iteration"] + 1: r["within_group_accuracy"] for r in records if r["split"] == "validation"}
    best = load_checkpoint(tmp_path / "best.pt")
    assert result.selected_by == "within group" and best["best_validation"] == max(within.values())
    assert within[best["iteration"]] == max(within.values())
    last = load_checkpoint(tmp_path / "last.pt")
    assert last["iteration"] == 6 and TrainConfig.from_dict(last["config"]) == tiny_config(tmp_path)
    assert last["best_validation"] == result.best_validation
    for name, value in result.model.state_dict().items():
        torch.testing.assert_close(last["model"][name], value, rtol=0, atol=0)
    assert len(last["preprocessing"]["mean"]) == 1 and last["preprocessing"]["invert"] is True


@pytest.mark.parametrize("engine, sampler", [("fast", "device"), ("l2l", "device"), ("fast", "learn2learn")])
def test_kill_and_resume_equals_an_uninterrupted_run(split, tmp_path, engine, sampler):
    config = lambda d: tiny_config(tmp_path / d, engine=engine, sampler=sampler)  # noqa: E731
    straight = train(config("a"), split).model.state_dict()
    train(config("b"), split, stop_after=4)
    resumed = train(config("b"), split, resume=True).model.state_dict()
    for name in straight:
        torch.testing.assert_close(resumed[name], straight[name], rtol=0, atol=0, msg=name)
    metrics = lambda d: [json.loads(line) for line in (tmp_path / d / "metrics.jsonl").read_text().splitlines()]  # noqa: E731
    strip = lambda rs: [{k: v for k, v in r.items() if k != "it_per_s"} for r in rs]  # noqa: E731
    assert strip(metrics("b")) == strip(metrics("a"))


def test_a_record_is_the_mean_of_its_window(split, tmp_path):
    train(tiny_config(tmp_path / "every", log_every=1), split)
    train(tiny_config(tmp_path / "windows", log_every=10), split)
    read = lambda d: [json.loads(line) for line in (tmp_path / d / "metrics.jsonl").read_text().splitlines()  # noqa: E731
                      if json.loads(line)["split"] == "train"]
    every, windows = read("every"), read("windows")
    assert [r["iteration"] for r in every] == list(range(6)) and all(r["iterations"] == 1 for r in every)
    for record in windows:
        inside = [r for r in every if record["iteration"] - record["iterations"] < r["iteration"] <= record["iteration"]]
        assert len(inside) == record["iterations"]
        for key in ("loss", "accuracy"):
            assert record[key] == pytest.approx(np.mean([r[key] for r in inside]), rel=1e-6)


def test_resume_refuses_another_configuration(split, tmp_path):
    train(tiny_config(tmp_path), split, stop_after=2)
    with pytest.raises(InputError, match="adaptation_lr: checkpoint 0.5, now 0.1"):
        train(tiny_config(tmp_path, adaptation_lr=0.1), split, resume=True)


def test_a_checkpoint_from_release_0_1_loads_and_resumes_as_it_was_trained(split, tmp_path):
    from anil_edge.export.trained import load_trained
    from anil_edge.train.checkpoint import save_checkpoint

    old = dict(sampler="learn2learn", embedding="raw")
    trained = train(tiny_config(tmp_path, **old), split, stop_after=2).model
    payload = load_checkpoint(tmp_path / "last.pt")
    for key in ("sampler", "embedding", "log_every", "stroke_augment"):  # as release 0.1 wrote it
        del payload["config"][key]
    save_checkpoint(tmp_path / "last.pt", payload)
    loaded = load_trained(tmp_path / "last.pt")
    assert loaded.config.embedding == "raw" and loaded.config.sampler == "learn2learn"
    for name, value in trained.state_dict().items():
        torch.testing.assert_close(loaded.model.state_dict()[name], value, rtol=0, atol=0)
    with pytest.raises(InputError, match="sampler: checkpoint 'learn2learn', now 'device'"):
        train(tiny_config(tmp_path, embedding="raw"), split, resume=True)
    train(tiny_config(tmp_path, **old), split, resume=True)


def test_checkpoint_errors(tmp_path):
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(tmp_path / "none.pt")
    (tmp_path / "garbage.pt").write_bytes(b"\x00garbage")
    with pytest.raises(CheckpointError, match="cannot read"):
        load_checkpoint(tmp_path / "garbage.pt")
    torch.save({"weights": torch.zeros(2)}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="expected an 'anil-edge-checkpoint' file"):
        load_checkpoint(tmp_path / "other.pt")


def test_checkpoints_are_never_unpickled(tmp_path):
    """A pickle that would run code on load is refused (weights_only=True)."""

    class Exploit:
        def __reduce__(self):
            return (exec, ("raise SystemExit('pwned')",))

    torch.save({"format": "anil-edge-checkpoint", "version": 1, "x": Exploit()}, tmp_path / "evil.pt")
    with pytest.raises(CheckpointError, match="cannot read"):
        load_checkpoint(tmp_path / "evil.pt")


def test_truncated_checkpoint(split, tmp_path):
    train(tiny_config(tmp_path), split, stop_after=2)
    data = (tmp_path / "last.pt").read_bytes()
    (tmp_path / "cut.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="cut.pt"):
        load_checkpoint(tmp_path / "cut.pt")


def test_bad_configuration_lists_every_problem():
    with pytest.raises(InputError) as info:
        TrainConfig(engine="jax", ways=1, head_init="random")
    message = str(info.value)
    assert "engine must be one of" in message and "head_init must be one of" in message and "ways" in message


def test_validation_within_groups_keeps_drawers_apart_where_recorded(tmp_path):
    from anil_edge.data.image_set import ImageSet
    from anil_edge.train.loop import _within_group_tasks

    base = glyph_set(n_classes=24, per_class=5, n_groups=6)
    drawers = np.tile(np.arange(1, 6), 24).astype(np.int64)  # glyph_set stores each class's images together
    assert all((base.labels[i * 5:(i + 1) * 5] == i).all() for i in range(24))
    split = split_by_group(ImageSet(base.images, base.labels, base.class_names, base.groups, drawers),
                           validation=0.2, test=0.2, seed=0)
    config = tiny_config(tmp_path, queries=2)
    tasks = _within_group_tasks(split.validation, 3, config)
    for t in range(tasks.support.shape[0]):
        support = set(split.validation.drawers[tasks.support[t]])
        assert len(support) == 1 and not support & set(split.validation.drawers[tasks.query[t]])
    records = [json.loads(line) for line in (train(config, split).out_dir / "metrics.jsonl").read_text().splitlines()]
    assert all(0 <= r["within_group_accuracy"] <= 1 for r in records if r["split"] == "validation")


def test_deployment_training_tasks_take_one_groups_classes_and_other_drawers_queries(tmp_path):
    import random

    from anil_edge.data.image_set import ImageSet
    from anil_edge.train.deployment_sampler import DeploymentTaskSampler

    base = glyph_set(n_classes=24, per_class=5, n_groups=6)
    drawers = np.tile(np.arange(1, 6), 24).astype(np.int64)
    data = ImageSet(base.images, base.labels, base.class_names, base.groups, drawers)
    sampler = DeploymentTaskSampler(data, ways=3, shots=2, queries=2)
    tasks = sampler.sample(20, random.Random(7))
    for t in range(20):
        classes = set(data.labels[tasks.support[t]]) | set(data.labels[tasks.query[t]])
        assert len({data.groups[c] for c in classes}) == 1 and len(classes) == 3
        assert not set(drawers[tasks.support[t]]) & set(drawers[tasks.query[t]])
    again = sampler.sample(20, random.Random(7))
    assert np.array_equal(again.support, tasks.support) and np.array_equal(again.query, tasks.query)  # seeded
    split = split_by_group(data, validation=0.2, test=0.2, seed=0)
    result = train(tiny_config(tmp_path, train_tasks="deployment", rotations=False, shots=2), split)
    assert load_checkpoint(tmp_path / "last.pt")["iteration"] == 6 and 0 <= result.best_validation <= 1
    flat = DeploymentTaskSampler(data, ways=9, shots=1, queries=1)  # no group of 9: classes from anywhere
    assert not flat.within_group and flat.sample(3, random.Random(1)).support.shape == (3, 9)


def test_no_test_split_trains_on_every_other_class(tmp_path):
    """test_fraction=0 (the model is scored on other data): every group trains or validates."""
    data = glyph_set(n_classes=12, per_class=5, n_groups=2)
    split = split_by_group(data, validation=0.3, test=0.0, seed=0)
    assert split.test.n_classes == 0 and split.train.n_classes + split.validation.n_classes == 12
    result = train(tiny_config(tmp_path, test_fraction=0.0, iterations=2, eval_every=2, rotations=False), split)
    assert 0 <= result.best_validation <= 1
