"""The command line under bad input: exit status 2 and one line on stderr that says what was
found and what was expected — never a traceback. Run in-process through ``main()``."""

from __future__ import annotations

import os

import numpy as np
import pytest

from anil_edge.cli.main import main
from anil_edge.runtime import FewShotClassifier
from tests.helpers import glyphs
from tests.train.helpers import write_folder


def run(capsys, *args):
    try:
        code = main([str(a) for a in args])
    except SystemExit as exc:  # argparse (bad option syntax) and --version
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(code, err, *needles):
    assert code == 2, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in err, err
    for needle in needles:
        assert needle in err, err


@pytest.fixture(scope="module")
def files(tmp_path_factory, backbone):
    root = tmp_path_factory.mktemp("cli")
    data = write_folder(root / "data", {f"group{g}/class{g}{c}": 4 for g in range(6) for c in range(2)}, size=32)
    write_folder(root / "classes", {"a": 2, "b": 2}, size=28)
    (root / "empty").mkdir()
    (root / "noimages" / "x").mkdir(parents=True)
    (root / "noimages" / "x" / "notes.txt").write_text("hello")
    (root / "badpng" / "x").mkdir(parents=True)
    (root / "badpng" / "x" / "broken.png").write_bytes(b"not a png")
    (root / "garbage.pt").write_bytes(b"garbage")
    (root / "garbage.onnx").write_bytes(b"garbage")
    (root / "garbage.npz").write_bytes(b"garbage")
    (root / "afile").write_text("x")
    (root / "bad.toml").write_text("[train\nways = ")
    for name, body in {"rotations": 'rotations = "no"', "data": 'data = "abc"', "batch": "meta_batch = 2.5",
                       "train5": "train = 5", "unknown": "learning_rate = 0.1", "lr": 'fast_lr = "fast"'}.items():
        (root / f"{name}.toml").write_text(body + "\n")
    images, labels = glyphs(2, 2, seed=1)
    clf = FewShotClassifier(backbone)
    clf.enroll("a", images[labels == 0])
    clf.save(root / "state.npz")
    return root, data


TRAIN = ["train", "--dataset", "folder", "--input-size", "28", "--ways", "3", "--hidden", "8", "--blocks", "2",
         "--shots", "1", "--queries", "2", "--iterations", "1", "--no-progress", "--device", "cpu"]
TRAIN_CASES = {
    "device-bogus": (["--device", "bogus"], "device must be"),
    "threads-negative": (["--threads", "-1"], "threads must be >= 0"),
    "group-norm-width": (["--norm", "group", "--hidden", "60"], "must divide hidden"),
    "input-too-small": (["--input-size", "3"], "too small"),
    "input-8-blocks-4": (["--input-size", "8", "--blocks", "4"], "too small"),
    "blocks-10": (["--blocks", "10"], "too small"),
    "ways-1": (["--ways", "1"], "ways must be >= 2"),
    "adaptation-lr-nan": (["--adaptation-lr", "nan"], "adaptation_lr must be a finite number"),
    "fast-lr-nan (old flag)": (["--fast-lr", "nan"], "adaptation_lr must be a finite number"),
    "meta-lr-inf": (["--meta-lr", "inf"], "meta_lr must be a finite number"),
    "adaptation-steps-huge": (["--adaptation-steps", "1000000000"], "adaptation_steps must lie in"),
    "iterations-negative": (["--iterations", "-1"], "iterations must be >= 0"),
    "fractions": (["--validation-fraction", "0.6", "--test-fraction", "0.5"], "must leave training classes"),
    "no-data": ([], "needs a data source"),
    "data-missing": (["--data", "no/such/folder"], "no/such/folder"),
    "config-missing": (["--config", "no.toml"], "config file not found"),
    "resume-nothing": (["--resume"], "cannot resume"),
    "timm-unknown": (["--backbone", "timm:vit_base_patch16_224", "--channels", "3", "--input-size", "64"],
                     "is not supported; expected one of timm:"),
    "timm-grayscale": (["--backbone", "timm:resnet18", "--input-size", "64"], "expected channels=3"),
    "timm-input-too-small": (["--backbone", "timm:resnet18", "--channels", "3", "--input-size", "16"], "too small"),
    "pretrained-file-missing": (["--backbone", "timm:resnet18", "--channels", "3", "--input-size", "32",
                                 "--pretrained", "no/such/weights.pth"], "pretrained weights file not found"),
    "pretrained-not-weights": (["--backbone", "timm:resnet18", "--channels", "3", "--input-size", "32",
                                "--pretrained", "weights.bin"], "expected a state dict file"),
    "pretrained-other-architecture": (["--backbone", "timm:resnet18", "--channels", "3", "--input-size", "32",
                                       "--pretrained", "efficientnet-lite0"], "holds weights for timm:tf_efficientnet_lite0"),
    "freeze-too-many-stages": (["--backbone", "timm:resnet18", "--channels", "3", "--input-size", "32",
                                "--freeze-stages", "6"], "freeze_stages must lie in [0, 5]"),
}


@pytest.mark.parametrize("name", TRAIN_CASES)
def test_train(capsys, files, tmp_path, name):
    root, data = files
    extra, needle = TRAIN_CASES[name]
    args = TRAIN + ["--out-dir", tmp_path / "run"] + extra
    if name not in ("no-data", "data-missing"):
        args += ["--data", data]
    assert_one_line_error(*run(capsys, *args)[::2], needle)


@pytest.mark.parametrize("config, needle", [("bad.toml", "not valid TOML"), ("rotations.toml", "rotations must be a bool"),
                                            ("data.toml", "data must be a list"), ("batch.toml", "meta_batch must be an integer"),
                                            ("train5.toml", "must be a table"), ("unknown.toml", "unknown training"),
                                            ("lr.toml", "adaptation_lr must be a number")])
def test_train_config_files(capsys, files, tmp_path, config, needle):
    root, data = files
    args = TRAIN + ["--out-dir", tmp_path / "run", "--config", root / config]
    args += [] if config == "data.toml" else ["--data", data]  # a flag would override the file's data
    assert_one_line_error(*run(capsys, *args)[::2], needle)


def test_a_new_run_does_not_replace_an_earlier_runs_checkpoints(capsys, files, tmp_path):
    root, data = files
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "best.pt").write_bytes(b"an earlier run's")
    code, _, err = run(capsys, *TRAIN, "--data", data, "--out-dir", run_dir)
    assert_one_line_error(code, err, "holds an earlier run's checkpoints (best.pt)", "--overwrite")
    assert (run_dir / "best.pt").read_bytes() == b"an earlier run's"
    assert_one_line_error(*run(capsys, *TRAIN, "--data", data, "--out-dir", run_dir, "--resume", "--overwrite")[::2],
                          "give one of them")
    assert run(capsys, *TRAIN, "--data", data, "--out-dir", run_dir, "--overwrite")[0] == 0
    assert (run_dir / "best.pt").read_bytes() != b"an earlier run's"


def test_enrolling_onto_an_existing_state_needs_extend_or_overwrite(capsys, files, tmp_path, model_path):
    root, _ = files
    state = tmp_path / "s.npz"
    state.write_bytes((root / "state.npz").read_bytes())
    before = state.read_bytes()
    code, _, err = run(capsys, "enroll", model_path, root / "classes", "--state", state)
    assert_one_line_error(code, err, "already holds an enrollment state", "--extend", "--overwrite")
    assert state.read_bytes() == before
    assert_one_line_error(*run(capsys, "enroll", model_path, root / "classes", "--state", state, "--extend",
                               "--overwrite")[::2], "give one of them")
    assert run(capsys, "enroll", model_path, root / "classes", "--state", state, "--overwrite")[0] == 0
    assert state.read_bytes() != before


def test_a_state_in_a_missing_folder_is_one_line(capsys, files, tmp_path, model_path):
    root, _ = files
    code, _, err = run(capsys, "enroll", model_path, root / "classes", "--state", tmp_path / "no" / "dir" / "s.npz")
    assert_one_line_error(code, err, "folder", "does not exist")
    assert ".lock" not in err


def test_train_out_dir_that_is_a_file(capsys, files):
    root, data = files
    assert_one_line_error(*run(capsys, *TRAIN, "--data", data, "--out-dir", root / "afile")[::2], "is a file")


def _other(root, name):
    return {"model": "garbage.onnx", "ck": "garbage.pt", "state": "state.npz"}.get(name, name)


EXPORT_CASES = {
    "missing": (["no.pt"], "not found"), "garbage": (["{root}/garbage.pt"], "cannot read as a checkpoint"),
    "a-folder": (["{root}/empty"], "checkpoint"), "out-not-onnx": (["{root}/garbage.pt", "--out", "{root}/m.txt"], "onnx"),
    "out-is-input": (["{root}/garbage.onnx", "--out", "{root}/garbage.onnx"], "refusing to write over it"),
    "out-folder-missing": (["{root}/garbage.pt", "--out", "{root}/no/such/m.onnx"], "does not exist"),
    "opset-5": (["{root}/garbage.pt", "--opset", "5"], "opset"),
    "opset-99": (["{root}/garbage.pt", "--opset", "99"], "opset"),
    "fixed-batch-0": (["{root}/garbage.pt", "--fixed-batch", "0"], "fixed batch size must be an integer >= 1, found 0"),
    "fixed-batch-negative": (["{root}/garbage.pt", "--fixed-batch", "-1"], "must be an integer >= 1, found -1"),
    "fixed-batch-without-pixels": (["{root}/garbage.pt", "--fixed-batch", "1", "--no-pixel-input"],
                                   "--no-pixel-input turns off"),
}


@pytest.mark.parametrize("name", EXPORT_CASES)
def test_export(capsys, files, name):
    pytest.importorskip("torch")
    root, _ = files
    args, needle = EXPORT_CASES[name]
    before = (root / "garbage.onnx").read_bytes()
    code, _, err = run(capsys, "export", *[a.format(root=root) for a in args])
    assert_one_line_error(code, err, needle)
    assert (root / "garbage.onnx").read_bytes() == before


def test_export_calibration_method_is_checked_by_the_parser(capsys, files):
    root, _ = files
    code, _, err = run(capsys, "export", root / "garbage.pt", "--calibration-method", "best")
    assert_one_line_error(code, err, "invalid choice")


EVALUATE_CASES = {
    "missing": (["no.onnx"], "not found"), "garbage": (["{root}/garbage.onnx"], "cannot load"),
    "ways-1": (["{model}", "--ways", "1"], "--ways >= 2"), "tasks-1": (["{model}", "--tasks", "1"], "--tasks >= 2"),
    "shots-0": (["{model}", "--shots", "0"], "--shots >= 1"), "queries-0": (["{model}", "--queries", "0"], "queries"),
    "no-data-record": (["{model}"], "dataset"), "upper-case-garbage": (["{root}/GARBAGE.ONNX"], "not found"),
    "split": (["{model}", "--split", "train"], "invalid choice"), "ways-text": (["{model}", "--ways", "x"], "invalid int"),
}


@pytest.mark.parametrize("name", EVALUATE_CASES)
def test_evaluate(capsys, files, model_path, name):
    root, _ = files
    args, needle = EVALUATE_CASES[name]
    code, _, err = run(capsys, "evaluate", *[a.format(root=root, model=model_path) for a in args])
    assert_one_line_error(code, err, needle)


ENROLL_CASES = {
    "model-missing": (["no.onnx", "{root}/classes", "--state", "{tmp}/s.npz"], "not found"),
    "model-garbage": (["{root}/garbage.onnx", "{root}/classes", "--state", "{tmp}/s.npz"], "cannot load"),
    "folder-missing": (["{model}", "{root}/nope", "--state", "{tmp}/s.npz"], "no such folder"),
    "folder-empty": (["{model}", "{root}/empty", "--state", "{tmp}/s.npz"], "no class folders"),
    "class-without-images": (["{model}", "{root}/noimages", "--state", "{tmp}/s.npz"], "with no images"),
    "broken-image": (["{model}", "{root}/badpng", "--state", "{tmp}/s.npz"], "cannot be read as an image"),
    "state-is-model": (["{model}", "{root}/classes", "--state", "{model}"], "refusing to write over it"),
    "state-folder-missing": (["{model}", "{root}/classes", "--state", "{tmp}/no/s.npz"], "s.npz"),
    "extend-missing-state": (["{model}", "{root}/classes", "--state", "{tmp}/s.npz", "--extend"], "not found"),
    "extend-garbage-state": (["{model}", "{root}/classes", "--state", "{root}/garbage.npz", "--extend"], "corrupted"),
    "remove-unknown": (["{model}", "--state", "{root}/state.npz", "--remove", "zzz"], "not enrolled"),
    "nothing-to-do": (["{model}", "--state", "{tmp}/s.npz"], "nothing to do"),
    "state-is-a-folder": (["{model}", "{root}/classes", "--state", "{root}/empty"], "empty"),
}


@pytest.mark.parametrize("name", ENROLL_CASES)
def test_enroll(capsys, files, model_path, tmp_path, name):
    root, _ = files
    args, needle = ENROLL_CASES[name]
    model_before = model_path.read_bytes()
    code, _, err = run(capsys, "enroll", *[a.format(root=root, model=model_path, tmp=tmp_path) for a in args])
    assert_one_line_error(code, err, needle)
    assert model_path.read_bytes() == model_before


PREDICT_CASES = {
    "state-missing": (["{model}", "{tmp}/no.npz", "{root}/classes"], "not found"),
    "state-garbage": (["{model}", "{root}/garbage.npz", "{root}/classes"], "corrupted"),
    "images-missing": (["{model}", "{root}/state.npz", "{root}/nothing.png"], "no such file"),
    "no-images": (["{model}", "{root}/state.npz", "{root}/empty"], "no images found"),
    "broken-image": (["{model}", "{root}/state.npz", "{root}/badpng"], "cannot be read as an image"),
    "threshold-2": (["{model}", "{root}/state.npz", "{root}/classes", "--threshold", "2"], "threshold must lie"),
    "threshold-nan": (["{model}", "{root}/state.npz", "{root}/classes", "--threshold", "nan"], "threshold must lie"),
    "model-garbage": (["{root}/garbage.onnx", "{root}/state.npz", "{root}/classes"], "cannot load"),
}


@pytest.mark.parametrize("name", PREDICT_CASES)
def test_predict(capsys, files, model_path, tmp_path, name):
    root, _ = files
    args, needle = PREDICT_CASES[name]
    assert_one_line_error(*run(capsys, "predict", *[a.format(root=root, model=model_path, tmp=tmp_path)
                                                    for a in args])[::2], needle)


def test_predict_with_a_state_of_another_model(capsys, files, tmp_path):
    root, _ = files
    other = tmp_path / "other.onnx"
    other.write_bytes((root.parent / "v1_model.onnx").read_bytes() if (root.parent / "v1_model.onnx").exists()
                      else open(os.path.join(os.path.dirname(__file__), "..", "data", "v1_model.onnx"), "rb").read())
    assert_one_line_error(*run(capsys, "predict", other, root / "state.npz", root / "classes")[::2],
                          "was enrolled with backbone")


OTHER = [(["info", "no.onnx"], "not found"), (["info", "{root}/garbage.onnx"], "cannot load"),
         (["info", "{root}/garbage.ts"], "garbage.ts"), (["bench", "nope"], "invalid choice"), ([], "required"),
         (["fly"], "invalid choice"), (["train", "--ways", "x"], "invalid int")]


@pytest.mark.parametrize("args, needle", OTHER)
def test_other_commands(capsys, files, args, needle):
    root, _ = files
    (root / "garbage.ts").write_bytes(b"garbage")
    assert_one_line_error(*run(capsys, *[a.format(root=root) for a in args])[::2], needle)


def test_version(capsys):
    code, out, _ = run(capsys, "--version")
    assert code == 0 and out.startswith("anil-edge ")


def test_file_names_that_are_not_utf8_are_printed_safely(capsys, model_path, tmp_path):
    """The state is written and the table printed, with the bad bytes escaped."""
    if os.name != "posix":
        pytest.skip("POSIX file names are bytes")
    folder = os.fsencode(tmp_path / "classes") + b"/caf\xe9"
    os.makedirs(folder)
    from PIL import Image

    Image.fromarray(np.zeros((28, 28), np.uint8)).save(folder.decode("utf-8", "surrogateescape") + "/x.png")
    code, out, err = run(capsys, "enroll", model_path, tmp_path / "classes", "--state", tmp_path / "s.npz")
    assert code == 0, err
    assert "caf\\udce9" in out and (tmp_path / "s.npz").is_file()
    code, out, err = run(capsys, "predict", model_path, tmp_path / "s.npz", tmp_path / "classes")
    assert code == 0 and "\\udce9" in out, err


class _Pickled:
    """Any Python object: what a weights-only load refuses."""


def test_files_given_in_the_wrong_place_say_what_they_are(capsys, files, tmp_path, model_path):
    """A checkpoint where a model goes, a model where a state or checkpoint goes, a pickle of
    Python objects: one line that says what the file is, never torch's unsafe-load advice."""
    torch = pytest.importorskip("torch")
    root, _ = files
    ckpt = tmp_path / "run.pt"
    torch.save({"format": "anil-edge-checkpoint", "model": {"w": torch.zeros(2)}}, ckpt)
    objects = tmp_path / "objects.pt"
    torch.save({"thing": _Pickled()}, objects)
    cases = [
        (["predict", ckpt, root / "state.npz", root / "classes"], "training checkpoint", "export it to ONNX first"),
        (["predict", model_path, model_path, root / "classes"], "not an enrollment state", "did you swap"),
        (["export", model_path, "--out", tmp_path / "m.onnx"], "is an ONNX model, not a training checkpoint"),
        (["export", objects, "--out", tmp_path / "m.onnx"], "safe (weights-only) load refuses"),
    ]
    for args, *needles in cases:
        code, _, err = run(capsys, *args)
        assert_one_line_error(code, err, *needles)
        assert "weights_only=False" not in err


def test_a_config_typo_is_reported_before_torch_is_imported(tmp_path):
    """At once (no 3-12 s torch import first), with a "did you mean"."""
    import subprocess
    import sys

    (tmp_path / "typo.toml").write_text("[train]\nway = 5\n")
    code = ("import sys\nfrom anil_edge.cli.main import main\n"
            f"status = main(['train', '--config', {str(tmp_path / 'typo.toml')!r}, '--out-dir', {str(tmp_path / 'run')!r}])\n"
            "print('torch' in sys.modules)\nsys.exit(status)\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and result.stdout.strip() == "False", result.stderr
    assert "'way': did you mean 'ways'?" in result.stderr and len(result.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("channels, rotated", [(3, ""), (1, " x 4 rotations = 20 classes")])
def test_too_few_class_folders_for_the_ways_is_refused_before_any_image_is_decoded(capsys, tmp_path, monkeypatch,
                                                                                   channels, rotated):
    pytest.importorskip("torch")
    from anil_edge.data import folder

    write_folder(tmp_path / "photos", {f"item{c}": 3 for c in range(5)}, size=32, rgb=channels == 3)
    monkeypatch.setattr(folder, "decode", lambda *a: pytest.fail("an image was decoded before the ways check"))
    code, _, err = run(capsys, "train", "--dataset", "folder", "--data", tmp_path / "photos", "--channels", channels,
                       "--input-size", 32, "--ways", 60, "--out-dir", tmp_path / "run")
    assert_one_line_error(code, err, f"5 class folders{rotated}, but 60-way tasks need 60 training classes", "--ways")


@pytest.mark.bad_input
def test_image_folders_for_the_default_glyphs_point_at_dataset_folder(capsys, tmp_path):
    """Forgetting --dataset folder said "glyphs data set is 28x28 grayscale: expected --input-size 28",
    which points at the wrong fix."""
    pytest.importorskip("torch")
    write_folder(tmp_path / "photos", {f"item{c}": 3 for c in range(5)}, size=32, rgb=True)
    code, _, err = run(capsys, "train", "--preset", "photos", "--data", tmp_path / "photos", "--out-dir",
                       tmp_path / "run")
    assert_one_line_error(code, err, "holds class folders of images, but the data set is 'glyphs'",
                          "did you mean --dataset folder?")
