"""The whole pipeline on the embedded glyph data set, on this machine's CPU (`make demo`):

meta-train (default recipe) → export ONNX FP32 + INT8 (validated) → score held-out scripts
(PyTorch vs ONNX FP32 vs ONNX INT8 through the device runtime) → write a few held-out classes
as image folders → enroll them from disk with the runtime → predict → print a summary.

    python examples/demo.py [--out runs/demo] [--iterations 2500] [--tasks 600] [--tiny]

The same steps by command line: ``anil-edge train``, ``anil-edge export --int8``,
``anil-edge evaluate``, ``anil-edge enroll``, ``anil-edge predict``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from anil_edge.data.glyphs import load_glyphs
from anil_edge.data.scoring import score as score_predictions
from anil_edge.data.splits import split_by_group
from anil_edge.data.tasks import fixed_tasks
from anil_edge.export.parity import DeployedEmbeddings
from anil_edge.export.pipeline import ExportImages, ExportOptions, export_checkpoint
from anil_edge.export.trained import load_trained
from anil_edge.runtime import Backbone, FewShotClassifier
from anil_edge.runtime.preprocess import to_input
from anil_edge.train.batches import BatchMaker
from anil_edge.train.config import TrainConfig
from anil_edge.train.evaluate import embed_images, predict_tasks
from anil_edge.train.trainer import train

ENROLL_CLASSES, QUERIES_PER_CLASS = 10, 4


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, default=Path("runs/demo"))
    p.add_argument("--iterations", type=int, default=2500, help="meta-iterations (default 2500, 9-14 min on 2 cores)")
    p.add_argument("--tasks", type=int, default=600, help="meta-test tasks per setting (default 600)")
    p.add_argument("--glyph-classes", type=int, default=0, help="use a subset of the glyph classes (0: all)")
    p.add_argument("--tiny", action="store_true", help="a seconds-long run for the tests (small model)")
    args = p.parse_args()
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    timings = {}

    start = time.perf_counter()
    split = split_by_group(load_glyphs(max_classes=args.glyph_classes), validation=0.15, test=0.25, seed=0)
    small = dict(hidden=16, blocks=3, ways=5, eval_tasks=10, eval_every=5, checkpoint_every=5) if args.tiny else {}
    every = max(1, args.iterations // 6)
    config = TrainConfig(**{"iterations": args.iterations, "out_dir": str(out / "train"), "eval_every": every,
                            "checkpoint_every": every, **small})
    print(f"[1/5] meta-training on {split.train.n_classes} glyph classes ({len(set(split.train.groups))} scripts), "
          f"{config.iterations} iterations")
    result = train(config, split)
    timings["train"] = time.perf_counter() - start

    print("[2/5] exporting ONNX FP32 + INT8 (validated against PyTorch)")
    trained = load_trained(out / "train" / "best.pt")
    calibration = to_input(split.train.sample_images(256), trained.preprocessing)
    exported = export_checkpoint(trained, out / "model.onnx", ExportOptions(int8=True),
                                 ExportImages(real=calibration, calibration=calibration, validation=split.validation))

    print(f"[3/5] scoring {args.tasks} tasks on {split.test.n_classes} held-out classes "
          f"({len(set(split.test.groups))} unseen scripts)")
    scores = score(trained, exported, split.test, args.tasks, [5] if args.tiny else [20, 5])

    print("[4/5] writing held-out classes as image folders, enrolling them from disk")
    support, queries = write_folders(out, split.test)
    model = Backbone(exported.onnx)
    clf = FewShotClassifier(model)
    start = time.perf_counter()
    for folder in sorted(support.iterdir()):
        clf.enroll(folder.name, sorted(folder.glob("*.png")))
    clf.fit()
    enroll_ms = 1e3 * (time.perf_counter() - start)
    clf.save(out / "state.npz")

    print("[5/5] predicting the query images")
    clf = FewShotClassifier.load(out / "state.npz", model)
    start = time.perf_counter()
    predictions = clf.predict([str(path) for path, _ in queries])
    predict_ms = 1e3 * (time.perf_counter() - start) / len(queries)
    correct = sum(pred.label == truth for pred, (_, truth) in zip(predictions, queries))

    print("\n# summary")
    print(f"trained      {config.iterations} iterations in {timings['train'] / 60:.1f} min, best validation "
          f"{100 * result.best_validation:.1f}% (per-image); curves: {out / 'train' / 'curves.png'}")
    print(f"exported     {exported.onnx} ({exported.onnx.stat().st_size / 1e6:.2f} MB), {exported.int8} "
          f"({exported.int8.stat().st_size / 1e6:.2f} MB); {len(exported.report.comparisons)} parity checks passed")
    for ways, row in scores.items():
        cells = "   ".join(f"{name} {r}" for name, r in row.items())
        print(f"meta-test    {ways}-way 1-shot: {cells}")
    print(f"enrollment   {len(clf.labels)} classes x 1 image from {support} in {enroll_ms:.1f} ms (embed + adapt)")
    print(f"prediction   {len(queries)} images, {predict_ms:.2f} ms per image; {correct}/{len(queries)} correct")


def score(trained, exported, test, tasks: int, ways_list: list[int]) -> dict[int, dict[str, str]]:
    E = embed_images(trained.model, BatchMaker(test, trained.preprocessing, torch.device("cpu")))
    fp32, int8 = DeployedEmbeddings(exported.onnx, test.images), DeployedEmbeddings(exported.int8, test.images)
    rows = {}
    for ways in ways_list:
        t = fixed_tasks(test, ways=ways, shots=1, queries=15, tasks=tasks, seed=1234)
        preds = {"PyTorch": predict_tasks(trained.model, E, t, trained.adaptation, ways),
                 "ONNX FP32": fp32.predict(t, ways), "ONNX INT8": int8.predict(t, ways)}
        rows[ways] = {k: str(score_predictions(v, t)).split(" (")[0]
                      for k, v in preds.items()}
    return rows


def write_folders(out: Path, test) -> tuple[Path, list[tuple[Path, str]]]:
    """ENROLL_CLASSES held-out classes: one support image each, QUERIES_PER_CLASS queries."""
    rng = np.random.default_rng(0)
    support, query_dir, queries = out / "enroll", out / "queries", []
    for c in sorted(rng.choice(test.n_classes, ENROLL_CLASSES, replace=False)):
        name = test.class_names[c].split()[0]  # "U+0561"
        images = test.images[test.labels == c][:, :, :, 0]
        (support / name).mkdir(parents=True, exist_ok=True)
        query_dir.mkdir(parents=True, exist_ok=True)
        Image.fromarray(images[0]).save(support / name / "0.png")
        for k in range(1, 1 + QUERIES_PER_CLASS):
            path = query_dir / f"{name}-{k}.png"
            Image.fromarray(images[k]).save(path)
            queries.append((path, name))
    return support, queries


if __name__ == "__main__":
    main()
