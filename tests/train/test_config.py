"""TrainConfig: what it records in an exported model."""

from __future__ import annotations

from pathlib import Path

from anil_edge.train.config import TrainConfig


def test_exported_models_record_data_sources_relative_or_by_name(tmp_path, monkeypatch):
    """Never a machine's own absolute layout: relative paths as given, absolute ones relative to
    the working folder when inside it, else by name."""
    monkeypatch.chdir(tmp_path)
    inside = tmp_path / "data" / "omniglot" / "images_background_small1.zip"
    config = TrainConfig(dataset="omniglot", data=("../shared/small2.zip", str(inside), "/elsewhere/alice/evaluation.zip"))
    assert config.provenance().sources == ("../shared/small2.zip", "data/omniglot/images_background_small1.zip",
                                           "evaluation.zip")
    assert not any(Path(s).is_absolute() for s in config.provenance().sources)
