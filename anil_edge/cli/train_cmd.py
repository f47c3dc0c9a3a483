"""``anil-edge train``: meta-train a backbone + head with ANIL."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from ..train.presets import PRESETS, preset
from .info_lines import info_lines


def add_parser(sub, name: str) -> None:
    from ..train.config import TrainConfig
    from .config_options import add_config_options

    parser = sub.add_parser(name, help="meta-train with ANIL", description=__doc__)
    parser.add_argument("--config", metavar="TOML", help="a TOML file of TrainConfig fields (a [train] table or top level)")
    parser.add_argument("--preset", choices=sorted(PRESETS),
                        help="start from a measured recipe (photos: pretrained EfficientNet-Lite0, see docs/photos.md); "
                             "--config and flags override it")
    parser.add_argument("--resume", action="store_true", help="continue from OUT_DIR/last.pt exactly")
    parser.add_argument("--overwrite", action="store_true",
                        help="start over in an OUT_DIR that holds an earlier run's checkpoints (without it, that is "
                             "refused; each old checkpoint stays until its new one is completely written)")
    parser.add_argument("--stop-after", type=int, metavar="N",
                        help="end this run after iteration N (saving last.pt), to --resume it later")
    add_config_options(parser, TrainConfig)


def run(args: argparse.Namespace) -> int:
    from ..train.config import TrainConfig
    from .config_options import config_from_args

    # every problem at once, before torch is imported
    config = config_from_args(TrainConfig, args, args.config, base=preset(args.preset))
    _check_run_folder(Path(config.out_dir), args)

    from ..data.sources import check_ways_before_loading, load_split
    from ..train.distributed import shutdown
    from ..train.preprocessing import decode_preprocessing  # a device install says: install torch
    from ..train.timm_catalog import resolve_pretrained, timm_name
    from ..train.trainer import check_out_dir, train

    check_out_dir(config)  # before the (slow) data loading, as the weights file is
    if config.pretrained:
        resolve_pretrained(config.pretrained, timm_name(config.backbone) or "")
    check_ways_before_loading(config.dataset, config.data, config.ways, config.uses_rotations)
    main = int(os.environ.get("RANK", "0")) == 0  # under torchrun, rank 0 speaks for the job
    with info_lines(sys.stdout):  # the slow steps say what they do (glyph rendering, validation, progress)
        split = load_split(config.dataset, config.data, decode_preprocessing(config),
                           validation=config.validation_fraction, test=config.test_fraction, seed=config.split_seed)
        if main:
            print(f"classes: train {split.train.n_classes}, validation {split.validation.n_classes}, "
                  f"test {split.test.n_classes}; writing to {config.out_dir}")
        try:
            result = train(config, split, resume=args.resume, stop_after=args.stop_after)
        except BaseException:
            shutdown(clean=False)
            raise
    shutdown()
    if main:
        print(f"best validation accuracy (per-image, {result.validation_ways}-way {config.shots}-shot, "
              f"{result.selected_by}): {100 * result.best_validation:.2f}%; checkpoints in {result.out_dir}")
    return 0


def _check_run_folder(out, args: argparse.Namespace) -> None:
    """A new run does not silently replace an earlier run's checkpoints; --resume needs one."""
    from ..errors import InputError

    if args.resume and args.overwrite:
        raise InputError("--resume continues the run in --out-dir and --overwrite starts it over: give one of them")
    if args.resume and not (out / "last.pt").is_file():
        raise InputError(f"cannot resume: checkpoint not found: {out / 'last.pt'}")
    earlier = [name for name in ("last.pt", "best.pt") if (out / name).is_file()]
    if earlier and not (args.resume or args.overwrite):
        raise InputError(f"{out} holds an earlier run's checkpoints ({', '.join(earlier)}): --resume continues that run, "
                         "--overwrite starts over, or choose another --out-dir")
