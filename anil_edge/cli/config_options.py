"""Command-line options generated from a frozen config dataclass: one ``--flag`` per field,
its help the field's comment, its default the field's default; a TOML file may set any field
and flags override it."""

from __future__ import annotations

import argparse
import inspect
import re
import tomllib
from dataclasses import MISSING, fields
from pathlib import Path
from typing import Any

from ..errors import InputError
from ..runtime.legacy import RENAMED_FLAGS

_COMMENT = re.compile(r"^\s+(\w+): [^=]+= .*?  # (.*)$")


def field_comments(cls: type) -> dict[str, str]:
    """The ``# comment`` after each field of a dataclass's source."""
    return {m.group(1): m.group(2) for line in inspect.getsource(cls).splitlines() if (m := _COMMENT.match(line))}


def add_config_options(parser: argparse.ArgumentParser, cls: type, skip: tuple[str, ...] = ()) -> None:
    comments = field_comments(cls)
    group = parser.add_argument_group(f"{cls.__name__} fields (also settable in --config)")
    for f in fields(cls):
        if f.name in skip:
            continue
        default = f.default if f.default is not MISSING else None
        flags = ["--" + f.name.replace("_", "-"), *RENAMED_FLAGS.get(f.name, ())]
        help_text = f"{comments.get(f.name, '')} (default: {default!r})".replace("%", "%%")
        if isinstance(default, bool) or str(f.type) == "bool | None":
            group.add_argument(*flags, dest=f.name, action=argparse.BooleanOptionalAction, default=None, help=help_text)
        elif isinstance(default, tuple):
            group.add_argument(*flags, dest=f.name, nargs="+", default=None, metavar="VALUE", help=help_text)
        else:
            kind = float if str(f.type) == "float | None" else type(default)
            group.add_argument(*flags, dest=f.name, type=kind, default=None, metavar=kind.__name__.upper(), help=help_text)


def config_from_args(cls: Any, args: argparse.Namespace, config_file: str | None,
                     base: dict[str, Any] | None = None) -> Any:
    """``cls`` from its defaults, then ``base`` (a preset), the TOML file's values, the flags given."""
    values: dict[str, Any] = {**(base or {}), **(_read_toml(config_file, cls) if config_file else {})}
    for f in fields(cls):
        given = getattr(args, f.name, None)
        if given is not None:
            values[f.name] = tuple(given) if isinstance(f.default, tuple) else given
    return cls.from_dict(values)


def _read_toml(path: str, cls: type) -> dict[str, Any]:
    file = Path(path)
    if not file.is_file():
        raise InputError(f"config file not found: {file}")
    try:
        data = tomllib.loads(file.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"{file}: not valid TOML ({exc})") from None
    table = data.get("train", data) if cls.__name__ == "TrainConfig" else data
    if not isinstance(table, dict):
        raise InputError(f"{file}: [train] must be a table of {cls.__name__} fields, found {type(table).__name__} "
                         f"{table!r:.40}")
    return {k.replace("-", "_"): v for k, v in table.items()}
