"""``anil-edge predict``: classify images with a model and an enrolled state."""

from __future__ import annotations

import argparse
import json


def add_parser(sub, name: str) -> None:
    p = sub.add_parser(name, help="classify images with an enrolled state", description=__doc__)
    p.add_argument("model", help="the .onnx model")
    p.add_argument("state", help="the state file written by anil-edge enroll")
    p.add_argument("images", nargs="+", help="image files and/or folders (searched recursively)")
    p.add_argument("--threshold", type=float, help="below this probability the answer is 'unknown' "
                   "(default: the state's, 0 unless set)")
    p.add_argument("--reject", type=float, metavar="RATE",
                   help="open-set rejection at this false-accept rate, with the model's calibrated threshold "
                        "(e.g. 0.05; default: the state's, off unless set)")
    p.add_argument("--top-k", type=int, default=1, metavar="K", help="also list the K most probable classes")
    p.add_argument("--json", action="store_true", help="one JSON object per image instead of a table")


def run(args: argparse.Namespace) -> int:
    from ..runtime import Backbone, FewShotClassifier
    from .files import images_in, printable

    paths = images_in(args.images)
    clf = FewShotClassifier.load(args.state, Backbone(args.model))
    if args.threshold is not None:
        clf.configure(threshold=args.threshold)
    if args.reject is not None:
        clf.configure(reject=args.reject)
    predictions = clf.predict([str(p) for p in paths], top_k=args.top_k)
    if args.json:
        for path, p in zip(paths, predictions):
            print(json.dumps({"image": str(path), "label": p.label, "best_label": p.best_label,
                              "probability": round(p.probability, 6), "open_set_score": round(p.score, 6),
                              "top": [[label, round(prob, 6)] for label, prob in p.top]}, allow_nan=False))
        return 0
    width = max(len(printable(p)) for p in paths)
    print(f"{'image':<{width}}  {'label':<16} probability  open-set score" + ("  top" if args.top_k > 1 else ""))
    for path, p in zip(paths, predictions):
        label = "unknown" if p.label is None else printable(p.label)
        top = "  " + ", ".join(f"{printable(k)} {v:.3f}" for k, v in p.top) if args.top_k > 1 else ""
        print(f"{printable(path):<{width}}  {label:<16} {p.probability:11.3f}  {p.score:14.3f}{top}")
    return 0
