"""Smoke run of the whole device path: export a small backbone, enroll from image folders, predict.

Until the training and CLI issues land, the backbone is an untrained, seeded Conv-4 and the
classes are synthetic block glyphs; the run proves the pipeline works end to end (export →
ONNX metadata → runtime enrollment from disk → saved state → prediction), not accuracy.

    python examples/smoke_demo.py [--out runs/smoke]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from anil_edge.export.onnx_export import export_onnx
from anil_edge.runtime import Backbone, FewShotClassifier, HeadSettings, Preprocessing, TrainingInfo
from anil_edge.synthetic import block_glyphs
from anil_edge.train.backbones import BackboneConfig, CNN4Backbone

CLASSES, SHOTS, QUERIES = 5, 3, 4


def write_folders(root: Path, images: np.ndarray, labels: np.ndarray) -> tuple[Path, list[tuple[Path, str]]]:
    """Support images as root/support/<class>/*.png; returns that folder and the (query path, label) list."""
    queries = []
    (root / "query").mkdir(parents=True, exist_ok=True)
    for c in range(CLASSES):
        name = f"glyph-{c}"
        (root / "support" / name).mkdir(parents=True, exist_ok=True)
        for k, img in enumerate(images[labels == c]):
            if k < SHOTS:
                Image.fromarray(img).save(root / "support" / name / f"{k}.png")
            else:
                path = root / "query" / f"{name}-{k}.png"
                Image.fromarray(img).save(path)
                queries.append((path, name))
    return root / "support", queries


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path("runs/smoke"), help="output folder")
    out = parser.parse_args().out
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    backbone = CNN4Backbone(BackboneConfig(channels=1, input_size=28)).eval()
    head = HeadSettings("prototype", lr=0.1, steps=5, weight=np.zeros((CLASSES, 64), np.float32), bias=np.zeros(CLASSES, np.float32))
    prep = Preprocessing(input_size=(28, 28), channels=1, mean=(0.0,), std=(1.0,), invert=True, resize="lanczos")
    meta = export_onnx(backbone, out / "model.onnx", preprocessing=prep, head=head, training=TrainingInfo(CLASSES, SHOTS, "untrained"))
    images, labels = block_glyphs(CLASSES, SHOTS + QUERIES, seed=1)
    support_root, queries = write_folders(out, images, labels)

    model = Backbone(out / "model.onnx")
    clf = FewShotClassifier(model)
    start = time.perf_counter()
    for folder in sorted(support_root.iterdir()):
        clf.enroll(folder.name, sorted(folder.glob("*.png")))
    clf.fit()
    enroll_ms = (time.perf_counter() - start) * 1e3
    clf.save(out / "state.npz")
    clf = FewShotClassifier.load(out / "state.npz", model)
    start = time.perf_counter()
    predictions = clf.predict([path for path, _ in queries])
    predict_ms = (time.perf_counter() - start) * 1e3 / len(queries)
    correct = sum(p.label == truth for p, (_, truth) in zip(predictions, queries))

    print(f"model        {out / 'model.onnx'} (D={meta.embedding_dim}, backbone {meta.backbone_sha256[:12]}, untrained)")
    print(f"enrolled     {len(clf.labels)} classes x {SHOTS} images from {support_root} in {enroll_ms:.1f} ms")
    print(f"state        {out / 'state.npz'} (saved and reloaded)")
    print(f"predicted    {len(queries)} query files, {predict_ms:.2f} ms per image")
    print(f"accuracy     {correct}/{len(queries)} = {correct / len(queries):.0%} (synthetic glyphs, untrained backbone)")


if __name__ == "__main__":
    main()
