"""``anil-edge enroll --extend`` with the same files does not double a class; ``predict`` shows
open-set scores and the top-k classes."""

from __future__ import annotations

import json
from pathlib import Path

from anil_edge.cli.main import main
from anil_edge.runtime import Backbone, FewShotClassifier
from tests.train.helpers import write_folder


def test_extend_with_the_same_files_skips_them(model_path, tmp_path, capsys):
    classes = write_folder(tmp_path / "classes", {"a": 3, "b": 2}, size=28)
    state = tmp_path / "s.npz"
    assert main(["enroll", str(model_path), str(classes), "--state", str(state)]) == 0
    assert main(["enroll", str(model_path), str(classes), "--state", str(state), "--extend"]) == 0
    assert "5 image(s) already enrolled were skipped" in capsys.readouterr().out
    assert FewShotClassifier.load(state, Backbone(model_path)).support_counts() == {"a": 3, "b": 2}
    assert main(["enroll", str(model_path), str(classes), "--state", str(state), "--extend", "--keep-duplicates"]) == 0
    assert FewShotClassifier.load(state, Backbone(model_path)).support_counts() == {"a": 6, "b": 4}


def test_predict_json_has_scores_and_top_k(model_path, tmp_path, capsys):
    classes = write_folder(tmp_path / "classes", {"a": 2, "b": 2, "c": 2}, size=28)
    state = tmp_path / "s.npz"
    assert main(["enroll", str(model_path), str(classes), "--state", str(state)]) == 0
    capsys.readouterr()
    assert main(["predict", str(model_path), str(state), str(classes), "--json", "--top-k", "2"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(rows) == 6 and all(len(r["top"]) == 2 and -1 <= r["open_set_score"] <= 1 for r in rows)
    assert main(["predict", str(model_path), str(state), str(classes), "--reject", "0.05"]) == 2
    assert "no open-set calibration" in capsys.readouterr().err


def test_remove_takes_integer_labels(model_path, tmp_path, capsys):
    """A state enrolled with integer labels (the Python API) loses class 7 to ``--remove 7``."""
    from tests.helpers import glyphs

    images, labels = glyphs(3, 2, seed=4)
    clf = FewShotClassifier(Backbone(model_path))
    clf.enroll_many(images, [int(v) + 6 for v in labels])
    state = tmp_path / "s.npz"
    clf.save(state)
    assert main(["enroll", str(model_path), "--state", str(state), "--remove", "7"]) == 0
    assert FewShotClassifier.load(state, Backbone(model_path)).labels == [6, 8]


def test_names_with_control_characters_print_escaped_on_one_row(model_path, tmp_path, capsys):
    """A class folder named with a newline or an ESC sequence: one row each, and nothing reaches
    the terminal that would clear it."""
    classes = write_folder(tmp_path / "classes", {"plain": 2, "two\nrows": 2, "clear\x1b[2J": 2}, size=28)
    state = tmp_path / "s.npz"
    assert main(["enroll", str(model_path), str(classes), "--state", str(state)]) == 0
    out = capsys.readouterr().out
    assert "two\\x0arows" in out and "clear\\x1b[2J" in out and "\x1b" not in out
    assert len(out.splitlines()) == 1 + 3 + 1  # the header, one row per class, the summary
    assert main(["predict", str(model_path), str(state), str(classes / "two\nrows")]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and len(out.splitlines()) == 1 + 2 and "two\\x0arows" in out


def test_unreadable_images_are_listed_at_once_and_predict_can_skip_them(model_path, tmp_path, capsys):
    """Corrupt JPEGs in two classes: one run lists all of them (nothing is written); predict lists
    them too, and with --skip-unreadable classifies the rest and reports the skipped ones."""
    classes = write_folder(tmp_path / "classes", {"a": 2, "b": 2}, size=28)
    for path in (classes / "a" / "x.jpg", classes / "b" / "y.jpg", classes / "b" / "z.jpg"):
        path.write_bytes(b"\xff\xd8\xff truncated")
    state = tmp_path / "s.npz"
    assert main(["enroll", str(model_path), str(classes), "--state", str(state)]) == 2
    err = capsys.readouterr().err
    assert "3 of 7 images cannot be used" in err and all(n in err for n in ("x.jpg", "y.jpg", "z.jpg"))
    assert not state.exists()
    good = write_folder(tmp_path / "good", {"a": 2, "b": 2}, size=28)
    assert main(["enroll", str(model_path), str(good), "--state", str(state)]) == 0
    capsys.readouterr()
    assert main(["predict", str(model_path), str(state), str(classes)]) == 2
    err = capsys.readouterr().err
    assert "3 of 7 images cannot be used" in err and "--skip-unreadable" in err
    assert main(["predict", str(model_path), str(state), str(classes), "--skip-unreadable", "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert sum("label" in r for r in rows) == 4
    assert sorted(Path(r["image"]).name for r in rows if "error" in r) == ["x.jpg", "y.jpg", "z.jpg"]
    assert main(["predict", str(model_path), str(state), str(classes), "--skip-unreadable"]) == 0
    captured = capsys.readouterr()
    assert len(captured.out.splitlines()) == 1 + 4 and "skipped 3 unreadable image(s)" in captured.err


def test_precision_picks_the_file_of_the_export_this_cpu_runs_exactly(model_path, tmp_path, capsys, monkeypatch):
    """--precision int8 is refused where the INT8 model's kernels saturate (faked AVX2-only CPU);
    --precision auto enrolls with it where it is exact and fast (faked VNNI CPU)."""
    import anil_edge.runtime.backbone as backbone_module
    from anil_edge.export.quantize import quantize_int8
    from anil_edge.runtime.state import load_state

    model = tmp_path / "model.onnx"
    model.write_bytes(model_path.read_bytes())
    classes = write_folder(tmp_path / "classes", {"a": 2, "b": 2}, size=28)
    quantize_int8(model, tmp_path / "model.int8.onnx", Backbone(model).preprocess(str(classes / "a" / "0.png")), fmt="u8s8")
    monkeypatch.setattr(backbone_module, "cpu_class", lambda: "x86-avx2")
    assert main(["enroll", str(model), str(classes), "--state", str(tmp_path / "s.npz"), "--precision", "int8"]) == 2
    assert "model.int8.onnx is not exact on this CPU (x86-avx2)" in capsys.readouterr().err
    monkeypatch.setattr(backbone_module, "cpu_class", lambda: "x86-vnni")
    assert main(["enroll", str(model), str(classes), "--state", str(tmp_path / "s.npz"), "--precision", "auto"]) == 0
    int8 = Backbone(tmp_path / "model.int8.onnx", allow_inexact=True)
    assert load_state(tmp_path / "s.npz").backbone_sha256 == int8.sha256
