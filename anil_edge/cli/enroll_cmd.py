"""``anil-edge enroll``: enroll classes from image folders into a state file (or remove some).

The state is read, changed and written under an exclusive lock, so concurrent ``enroll
--extend`` runs on one state file take turns and none loses another's classes."""

from __future__ import annotations

import argparse
from pathlib import Path

from .files import add_precision_option


def add_parser(sub, name: str) -> None:
    p = sub.add_parser(name, help="enroll classes from folders into a state file", description=__doc__)
    p.add_argument("model", help="the .onnx model")
    p.add_argument("folder", nargs="?", help="a folder with one sub-folder of images per class")
    p.add_argument("--state", required=True, help="the state file (.npz) to write")
    p.add_argument("--extend", action="store_true", help="add to the classes already in --state")
    p.add_argument("--overwrite", action="store_true",
                   help="replace an existing --state (without it, enrolling onto an existing state is refused; the old "
                        "file stays in place until the new one is completely written)")
    p.add_argument("--remove", action="append", default=[], metavar="LABEL", help="remove a class (repeatable)")
    add_precision_option(p)
    p.add_argument("--keep-duplicates", action="store_true",
                   help="enroll images a class already holds again (default: skip them, so that --extend with the "
                        "same files does not double a class)")


def run(args: argparse.Namespace) -> int:
    from ..atomic import exclusive_lock, refuse_output_over_input
    from ..errors import InputError
    from ..runtime import Backbone, FewShotClassifier
    from .files import class_folders, printable

    if args.folder is None and not args.remove:
        raise InputError("nothing to do: give a FOLDER of class folders to enroll, or --remove LABEL")
    state = Path(args.state)
    _check_target(state, args)
    classes = class_folders(args.folder) if args.folder is not None else {}
    for paths in classes.values():
        refuse_output_over_input(state, paths, what="state file")
    backbone = Backbone(args.model, precision=args.precision)
    existing = args.extend or (args.remove and args.folder is None)
    with exclusive_lock(state):
        clf = FewShotClassifier.load(state, backbone) if existing else FewShotClassifier(backbone)
        for label in args.remove:
            clf.remove(_as_enrolled(label, clf.labels))
        skipped = _enroll_classes(clf, classes, deduplicate=not args.keep_duplicates)
        clf.save(state)
    counts = clf.support_counts()
    width = max([len(printable(k)) for k in counts] + [5])
    print(f"{'class':<{width}}  images")
    for label, n in counts.items():
        print(f"{printable(label):<{width}}  {n}")
    note = f"; {skipped} image(s) already enrolled were skipped (--keep-duplicates enrolls them)" if skipped else ""
    print(f"{len(counts)} classes in {printable(state)}{note}")
    return 0


def _enroll_classes(clf, classes: dict, *, deduplicate: bool) -> int:
    """Enroll every class folder; the number of images skipped as already enrolled. Unreadable
    images of every class are listed in one error (nothing is saved), not one per run."""
    from ..errors import UnreadableImagesError

    skipped, unreadable, total = 0, [], 0
    for label, paths in classes.items():
        total += len(paths)
        try:
            skipped += len(paths) - clf.enroll(label, [str(p) for p in paths], deduplicate=deduplicate)
        except UnreadableImagesError as exc:
            unreadable += exc.failures
    if unreadable:
        raise UnreadableImagesError(unreadable, total, "nothing was enrolled: remove or replace these files and run "
                                    "the command again")
    return skipped


def _as_enrolled(text: str, labels: list) -> str | int:
    """A --remove argument as the label type the state holds: an int where its labels are ints."""
    if labels and isinstance(labels[0], int) and text.strip().lstrip("+-").isdigit():
        return int(text)
    return text


def _check_target(state: Path, args: argparse.Namespace) -> None:
    """Refuse, before any work, to write where it cannot, over the model, or over a state unasked."""
    from ..atomic import refuse_output_over_input
    from ..errors import InputError

    if args.extend and args.overwrite:
        raise InputError("--extend adds to the state and --overwrite replaces it: give one of them")
    if not state.parent.is_dir():
        raise InputError(f"cannot write {state}: folder {state.parent} does not exist")
    refuse_output_over_input(state, [args.model], what="state file")
    if state.exists() and args.folder is not None and not (args.extend or args.overwrite):
        raise InputError(f"{state} already holds an enrollment state: --extend adds these classes to it, --overwrite "
                         "replaces it")
