"""``anil-edge predict``: classify images with a model and an enrolled state."""

from __future__ import annotations

import argparse
import json

from .files import add_precision_option


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
    add_precision_option(p)
    p.add_argument("--skip-unreadable", action="store_true",
                   help="predict the images that can be read and report the others (default: refuse the run, listing "
                        "every unreadable image)")


def run(args: argparse.Namespace) -> int:
    from ..runtime import Backbone, FewShotClassifier
    from .files import images_in

    paths = images_in(args.images)
    clf = FewShotClassifier.load(args.state, Backbone(args.model, precision=args.precision))
    if args.threshold is not None:
        clf.configure(threshold=args.threshold)
    if args.reject is not None:
        clf.configure(reject=args.reject)
    pixels, failures = _decode(paths, clf, args.skip_unreadable)
    readable = [p for i, p in enumerate(paths) if i not in failures]
    predictions = clf.predict(pixels, top_k=args.top_k)
    if args.json:
        _print_json(readable, predictions, {paths[i]: reason for i, reason in failures.items()})
    else:
        _print_table(readable, predictions, args.top_k)
        _report_skipped([reason for _, reason in sorted(failures.items())])
    return 0


def _decode(paths: list, clf, skip: bool):
    """The query images as the model's float pixels (N, C, H, W), and {index: reason} for those
    that cannot be read; without ``skip`` any of them refuses the run, all listed at once."""
    import numpy as np

    from ..errors import UnreadableImagesError
    from ..runtime.preprocess import decode_each

    decoded, failures = decode_each([str(p) for p in paths], clf.backbone.metadata.preprocessing)
    good = [d for d in decoded if d is not None]
    if failures and not (skip and good):
        hint = "--skip-unreadable predicts the other images and reports these" if good else ""
        raise UnreadableImagesError(failures, len(paths), hint)
    return (np.stack(good) if good else None), dict(failures)


def _print_json(paths: list, predictions: list, skipped: dict) -> None:
    for path, p in zip(paths, predictions):
        print(json.dumps({"image": str(path), "label": p.label, "best_label": p.best_label,
                          "probability": round(p.probability, 6), "open_set_score": round(p.score, 6),
                          "top": [[label, round(prob, 6)] for label, prob in p.top]}, allow_nan=False))
    for path, reason in skipped.items():
        print(json.dumps({"image": str(path), "error": reason}))


def _print_table(paths: list, predictions: list, top_k: int) -> None:
    from .files import printable

    width = max(len(printable(p)) for p in paths)  # _decode leaves at least one readable image
    print(f"{'image':<{width}}  {'label':<16} probability  open-set score" + ("  top" if top_k > 1 else ""))
    for path, p in zip(paths, predictions):
        label = "unknown" if p.label is None else printable(p.label)
        top = "  " + ", ".join(f"{printable(k)} {v:.3f}" for k, v in p.top) if top_k > 1 else ""
        print(f"{printable(path):<{width}}  {label:<16} {p.probability:11.3f}  {p.score:14.3f}{top}")


def _report_skipped(reasons: list[str]) -> None:
    """The skipped images, on stderr so that the table stays parseable."""
    import sys

    from .files import printable

    if reasons:
        listed = "".join(f"\n  - {printable(r)}" for r in reasons)
        print(f"anil-edge predict: skipped {len(reasons)} unreadable image(s):{listed}", file=sys.stderr)
