"""``anil-edge evaluate model.onnx`` runs on a device install (no torch, no onnx) and its numbers
are the deployed classifier's, task by task."""

from __future__ import annotations

import json

import numpy as np
import pytest

from anil_edge.data.provenance import provenance_split
from anil_edge.data.tasks import fixed_tasks
from anil_edge.runtime import Backbone, FewShotClassifier
from anil_edge.runtime.metadata import DataProvenance, TrainingInfo
from tests.helpers import GRAY, TINY_ADAPTATION, WAYS, run_isolated, tiny_head
from tests.train.helpers import write_folder

pytest.importorskip("PIL")


@pytest.fixture(scope="module")
def folder_model(torch_backbone, tmp_path_factory):
    """The tiny backbone exported with a record of a fabricated folder data set (8 groups × 3 classes)."""
    from anil_edge.export.onnx_export import export_onnx

    root = tmp_path_factory.mktemp("evaluate")
    data = write_folder(root / "data", {f"group{g}/class{g}{c}": 5 for g in range(8) for c in range(3)}, size=36)
    provenance = DataProvenance("folder", (str(data),), validation_fraction=0.25, test_fraction=0.25, split_seed=0)
    path = root / "model.onnx"
    export_onnx(torch_backbone, path, preprocessing=GRAY, adaptation=TINY_ADAPTATION, learned_head=tiny_head(),
                training=TrainingInfo(WAYS, 1, provenance))
    return path, provenance


def test_evaluate_onnx_needs_no_torch_and_equals_the_classifier_task_by_task(folder_model):
    path, provenance = folder_model
    args = ["evaluate", str(path), "--ways", "3", "--shots", "2", "--queries", "2", "--tasks", "12", "--json"]
    result = run_isolated(f"""
        import sys
        from anil_edge.cli.main import main
        code = main({args!r})
        loaded = sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "learn2learn", "onnx"))
        assert not loaded, loaded
        sys.exit(code)
        """)
    assert result.returncode == 0, result.stderr
    assert "embedding " in result.stderr and "scoring 12 tasks of 3-way 2-shot" in result.stderr  # not silent
    reported = json.loads(result.stdout.strip().splitlines()[-1])

    backbone = Backbone(path)
    test = provenance_split(provenance, None, backbone.metadata.preprocessing).test
    tasks = fixed_tasks(test, ways=3, shots=2, queries=2, tasks=12, seed=1234, name="test set")
    expected = []
    for t in range(12):  # what an app does: enroll each class's support images, predict the queries
        clf = FewShotClassifier(backbone)
        for c in range(3):
            clf.enroll(f"class {c}", test.images[tasks.support[t][tasks.support_labels[t] == c]])
        labels = [p.label for p in clf.predict(test.images[tasks.query[t]])]
        expected.append(np.mean([label == f"class {c}" for label, c in zip(labels, tasks.query_labels[t])]))
    np.testing.assert_allclose(reported["per_task"], expected, rtol=0, atol=1e-12)
    assert reported["accuracy"] == pytest.approx(np.mean(expected)) and reported["tasks"] == 12


def test_an_upper_case_suffix_is_still_an_onnx_model(folder_model, tmp_path, capsys):
    from anil_edge.cli.main import main

    path, _ = folder_model
    upper = tmp_path / "MODEL.ONNX"
    upper.write_bytes(path.read_bytes())
    assert main(["evaluate", str(upper), "--ways", "3", "--shots", "2", "--queries", "2", "--tasks", "4"]) == 0
    assert "3-way 2-shot on test classes" in capsys.readouterr().out


def test_distinct_drawers_on_omniglot_data_and_a_clear_error_elsewhere(torch_backbone, folder_model, tmp_path, capsys):
    from anil_edge.cli.main import main
    from anil_edge.export.onnx_export import export_onnx
    from tests.train.helpers import write_omniglot_zip

    zipped = write_omniglot_zip(tmp_path / "omni.zip", "images_background",
                                {f"Alphabet{a}": 3 for a in range(8)}, drawers=5)
    provenance = DataProvenance("omniglot", (str(zipped),), validation_fraction=0.25, test_fraction=0.25, split_seed=0)
    path = tmp_path / "omni.onnx"
    export_onnx(torch_backbone, path, preprocessing=GRAY, adaptation=TINY_ADAPTATION, learned_head=tiny_head(),
                training=TrainingInfo(WAYS, 1, provenance))
    args = ["evaluate", str(path), "--ways", "3", "--queries", "3", "--tasks", "6", "--within-group",
            "--distinct-drawers"]
    assert main(args + ["--json"]) == 0
    reported = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert reported["distinct_drawers"] and reported["within_group"] and len(reported["per_task"]) == 6
    assert main(args) == 0
    assert "(within groups, distinct drawers)" in capsys.readouterr().out
    folder_path, _ = folder_model
    assert main(["evaluate", str(folder_path), "--ways", "3", "--tasks", "4", "--queries", "2",
                 "--distinct-drawers"]) == 2
    assert "records none" in capsys.readouterr().err


def test_a_model_trained_without_a_test_split_is_scored_on_other_data(torch_backbone, tmp_path, capsys):
    """--test-fraction 0 keeps every class for training and validation; evaluate then says where
    the test classes went, and --split all scores every class of the data given."""
    from anil_edge.cli.main import main
    from anil_edge.export.onnx_export import export_onnx

    data = write_folder(tmp_path / "data", {f"group{g}/class{g}{c}": 4 for g in range(4) for c in range(3)}, size=36)
    other = write_folder(tmp_path / "other", {f"script{g}/char{g}{c}": 4 for g in range(2) for c in range(3)}, size=36)
    provenance = DataProvenance("folder", (str(data),), validation_fraction=0.25, test_fraction=0.0, split_seed=0)
    path = tmp_path / "model.onnx"
    export_onnx(torch_backbone, path, preprocessing=GRAY, adaptation=TINY_ADAPTATION, learned_head=tiny_head(),
                training=TrainingInfo(WAYS, 1, provenance))
    split = provenance_split(provenance, None, GRAY)
    assert split.test.n_classes == 0 and split.train.n_classes + split.validation.n_classes == 12
    common = ["--ways", "3", "--queries", "2", "--tasks", "5"]
    assert main(["evaluate", str(path), *common]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "test_fraction 0" in err and "--split all" in err
    assert main(["evaluate", str(path), *common, "--split", "all"]) == 2
    assert "--split all scores every class of --data" in capsys.readouterr().err
    assert main(["evaluate", str(path), *common, "--split", "all", "--data", str(other), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["tasks"] == 5
