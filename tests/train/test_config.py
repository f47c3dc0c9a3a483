"""TrainConfig: what it records in an exported model."""

from __future__ import annotations

from pathlib import Path

from anil_edge.train.config import TrainConfig


def test_exported_models_record_data_sources_relative_to_the_model_or_by_name(tmp_path, monkeypatch):
    """Never a machine's own absolute layout: relative to the model's folder when they share one
    (below the root), else by name; the checkpoint keeps the paths as given."""
    monkeypatch.chdir(tmp_path)
    inside = tmp_path / "data" / "omniglot" / "images_background_small1.zip"
    config = TrainConfig(dataset="omniglot", data=("data/small2.zip", str(inside), "/elsewhere-root/evaluation.zip"))
    shipped = config.shipped_provenance(tmp_path / "runs" / "omniglot").sources
    assert shipped == ("../../data/small2.zip", "../../data/omniglot/images_background_small1.zip", "evaluation.zip")
    assert not any(Path(s).is_absolute() for s in shipped)
    assert config.provenance().sources == config.data
