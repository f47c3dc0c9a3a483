"""``anil-edge <command>``: argument parsing, and one clear line instead of a traceback for
user errors (missing files, wrong formats, bad option values)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from .. import __version__
from ..errors import AnilEdgeError, install_hint
from . import bench_cmd, enroll_cmd, evaluate_cmd, export_cmd, info_cmd, predict_cmd, train_cmd
from .files import printable

COMMANDS = {"train": train_cmd, "export": export_cmd, "enroll": enroll_cmd, "predict": predict_cmd,
            "evaluate": evaluate_cmd, "info": info_cmd, "bench": bench_cmd}


class _Parser(argparse.ArgumentParser):
    """Bad options: one line (``anil-edge train: error: ...``) and exit status 2, no usage dump."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="anil-edge", description="ANIL few-shot learning from a GPU to a device.")
    parser.add_argument("--version", action="version", version=f"anil-edge {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, module in COMMANDS.items():
        module.add_parser(sub, name)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(COMMANDS[args.command].run(args) or 0)
    except ModuleNotFoundError as exc:  # an optional dependency this command needs
        if exc.name is None or exc.name.split(".")[0] in ("anil_edge",):
            raise
        print(f"anil-edge {args.command}: error: this command needs the '{exc.name}' package, which is not "
              f"installed; {install_hint(exc.name)}", file=sys.stderr)
        return 2
    except (AnilEdgeError, OSError) as exc:  # OSError: missing files, full disks, read-only folders
        print(f"anil-edge {args.command}: error: {printable(exc, lines=True)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:  # training says where --resume continues
        detail = f": {printable(exc)}" if str(exc) else ""
        print(f"anil-edge {args.command}: interrupted{detail}", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
