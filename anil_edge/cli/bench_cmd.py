"""``anil-edge bench NAME [options]``: run one of the benchmarks that print the tables in
benchmarks/RESULTS.md (``anil-edge bench NAME --help`` for its options).

Names: head (numpy head steps vs torch vs learn2learn), training (meta-iterations/s, fast vs
l2l), export (embedding speed: eager, TorchScript, ORT FP32 / INT8), deployed (a checkpoint's
accuracy through PyTorch, ONNX FP32 and INT8), recipes (the Omniglot recipe table).
Timings are medians; run them on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import importlib


def add_parser(sub, name: str) -> None:
    from ..bench import BENCHMARKS

    p = sub.add_parser(name, help="run a benchmark (prints a table)", description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("benchmark", choices=sorted(BENCHMARKS), help="which benchmark")
    p.add_argument("options", nargs=argparse.REMAINDER, help="the benchmark's own options")


def run(args: argparse.Namespace) -> int:
    from ..bench import BENCHMARKS

    importlib.import_module(f"anil_edge.bench.{BENCHMARKS[args.benchmark]}").main(args.options)
    return 0
