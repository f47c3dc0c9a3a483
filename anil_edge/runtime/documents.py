"""The JSON form of anil-edge's records, derived from their dataclasses' fields: one writer
(:func:`to_document`; timm's ``PretrainedCfg.to_dict`` is ``asdict``) and one strict reader
(:func:`from_document`), shared by the model metadata, the sidecar, the enrollment state's
header and the training configuration.

Fields map to keys of the same name; tuples become lists, mapping keys strings, float32 arrays
``{"dtype", "shape", "base64"}`` (bit-exact), and fields that are None are left out.

Reading follows each field's annotation strictly — a string is not a bool, a float is not an
int, a string is not a list — and records every problem, named by the field's path, before
the caller raises. Only types are checked here: each record checks its own values (in its
``__post_init__``, whose problems name the field first; the reader puts the record's path in
front), and the file readers check what spans records.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import types
import typing
from collections.abc import Mapping
from typing import Any, TypeVar, Union

import numpy as np

from ..errors import InputError

T = TypeVar("T")
_BAD = object()  # what a value that does not have its type reads as (its problem is recorded)
_SCALARS = {bool: "a bool (true or false)", int: "an integer", float: "a number", str: "a string",
            np.ndarray: "a base64 float32 array"}
_PLURALS = {bool: "bools", int: "integers", float: "numbers", str: "strings"}


MAX_JSON_BYTES = 64 * 2**20  # no JSON file anil-edge writes comes near this


def parse_json(text: str | bytes, max_bytes: int = MAX_JSON_BYTES) -> Any:
    """``json.loads`` bounded before it is trusted: ``ValueError`` (a one-line reason) for text
    over ``max_bytes`` or nested deeper than Python's parser can follow (a raw RecursionError
    otherwise), as for malformed JSON."""
    if len(text) > max_bytes:
        raise ValueError(f"{len(text)} bytes, more than the {max_bytes} any anil-edge JSON file holds")
    try:
        return json.loads(text)
    except RecursionError:
        raise ValueError("nested deeper than any anil-edge JSON file") from None


def to_document(value: Any) -> Any:
    """``value`` (a dataclass, mapping, sequence, array or JSON scalar) as JSON-ready data."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_document(getattr(value, f.name)) for f in dataclasses.fields(value)
                if getattr(value, f.name) is not None}
    if isinstance(value, np.ndarray):
        return encode_array(value)
    if isinstance(value, Mapping):
        return {str(k): to_document(v) for k, v in value.items()}
    if isinstance(value, (tuple, list)):
        return [to_document(v) for v in value]
    return value


def encode_array(array: np.ndarray) -> dict[str, Any]:
    """A float32 array as base64 of its little-endian bytes, with its shape (round-trips exactly)."""
    array = np.ascontiguousarray(array, dtype="<f4")
    return {"dtype": "float32", "shape": list(array.shape), "base64": base64.b64encode(array.tobytes()).decode()}


def from_document(cls: type[T], doc: Any, problems: list[str], path: str = "", *, defaults: bool = False) -> T | None:
    """The ``cls`` record that :func:`to_document` wrote as ``doc``, or None after appending to
    ``problems`` every field that is missing or not of its annotated type (a missing field
    whose default is None is None; with ``defaults`` every missing field takes its default).
    Keys the record does not have are ignored: a newer writer may add some."""
    if not isinstance(doc, dict):
        problems.append(f"{path or 'the document'} must be an object, found {type(doc).__name__} {doc!r:.40}")
        return None
    before, values, types_ = len(problems), {}, typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        where = f"{path}.{f.name}" if path else f.name
        if f.name in doc:
            values[f.name] = _read(doc[f.name], types_[f.name], where, problems, (list, tuple))
        elif f.default is None or (defaults and _has_default(f)):
            continue
        else:
            problems.append(f"missing field '{where}'")
    if len(problems) > before:
        return None
    try:
        return cls(**values)
    except InputError as exc:  # the record's own value checks
        problems.extend(f"{path}.{p}" if path else p for p in exc.problems)
        return None


def type_problems(record: Any) -> list[str]:
    """The fields of the dataclass instance ``record`` whose value is not of the annotated type
    (a tuple field needs a tuple), each as "NAME must be ..., found ..."."""
    problems: list[str] = []
    types_ = typing.get_type_hints(type(record))
    for f in dataclasses.fields(record):
        _read(getattr(record, f.name), types_[f.name], f.name, problems, (tuple,))
    return problems


def describe(tp: Any) -> str:
    """What a value of annotation ``tp`` is, in words ("a list of strings", "a number, or unset")."""
    args = typing.get_args(tp)
    if _is_union(tp):
        named = " or ".join(describe(a) for a in args if a is not type(None))
        return f"{named}, or unset" if type(None) in args else named
    if typing.get_origin(tp) is tuple:
        many = "" if args[-1] is Ellipsis else f"{len(args)} "
        return f"a list of {many}{_plural(args[0])}"
    if typing.get_origin(tp) in (dict, Mapping) and args[1] is not Any:
        return f"an object mapping {_plural(args[0])} to {_plural(args[1])}"
    if dataclasses.is_dataclass(tp) or typing.get_origin(tp) in (dict, Mapping):
        return "an object"
    return _SCALARS.get(tp, "any value")


def _has_default(f: dataclasses.Field) -> bool:
    return f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING


def _is_union(tp: Any) -> bool:
    return typing.get_origin(tp) in (Union, types.UnionType)


def _plural(tp: Any) -> str:
    if _is_union(tp):
        return " or ".join(_plural(a) for a in typing.get_args(tp))
    return _PLURALS.get(tp, "values")


def _read(value: Any, tp: Any, where: str, problems: list[str], sequences: tuple[type, ...]) -> Any:
    """``value`` as annotation ``tp`` requires (a JSON list as a tuple, an array document as an
    array), or :data:`_BAD` after recording why it is not one."""
    if _is_union(tp) and value is not None:  # an optional record or array: read as one
        inner = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(inner) == 1 and (dataclasses.is_dataclass(inner[0]) or inner[0] is np.ndarray):
            tp = inner[0]
    document = list in sequences
    if isinstance(tp, type) and dataclasses.is_dataclass(tp) and document and not isinstance(value, tp):
        read = from_document(tp, value, problems, where)
        return _BAD if read is None else read
    if tp is np.ndarray and document:
        return _array(value, where, problems)
    typed = _typed(value, tp, sequences)
    if typed is _BAD:
        problems.append(f"{where} must be {describe(tp)}, found {type(value).__name__} {value!r:.40}")
    return typed


def _typed(value: Any, tp: Any, sequences: tuple[type, ...]) -> Any:
    """``value`` as a ``tp`` (scalars, unions, tuples, mappings), or :data:`_BAD`."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if tp is Any:
        return value
    if _is_union(tp):
        if value is None and type(None) in args:
            return None
        return next((v for v in (_typed(value, a, sequences) for a in args if a is not type(None)) if v is not _BAD),
                    _BAD)
    if origin is tuple:
        return _sequence(value, args, sequences)
    if origin in (dict, Mapping):
        return _mapping(value, args, sequences)
    if tp is float:
        return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else _BAD
    if tp is int:
        return value if isinstance(value, int) and not isinstance(value, bool) else _BAD
    return value if isinstance(value, tp) else _BAD


def _sequence(value: Any, args: tuple[Any, ...], sequences: tuple[type, ...]) -> Any:
    if not isinstance(value, sequences):
        return _BAD
    given = list(value)  # type: ignore[call-overload]  # a list or tuple: checked above
    kinds = [args[0]] * len(given) if args[-1] is Ellipsis else list(args)
    if len(kinds) != len(given):
        return _BAD
    items = tuple(_typed(v, k, sequences) for v, k in zip(given, kinds))
    return _BAD if any(item is _BAD for item in items) else items


def _mapping(value: Any, args: tuple[Any, ...], sequences: tuple[type, ...]) -> Any:
    if not isinstance(value, Mapping):
        return _BAD
    key_type, value_type = args
    out = {}
    for k, v in value.items():
        try:
            key = float(k) if key_type is float and isinstance(k, str) else k  # JSON keys are strings
        except ValueError:
            return _BAD
        key, v = _typed(key, key_type, sequences), _typed(v, value_type, sequences)
        if key is _BAD or v is _BAD:
            return _BAD
        out[key] = v
    return out


def _array(value: Any, where: str, problems: list[str]) -> Any:
    """A float32 array from the document :func:`encode_array` writes; its values must be finite."""
    try:
        shape = tuple(value["shape"])
        if not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in shape):
            raise ValueError(f"shape must be non-negative integers, found {value['shape']!r:.40}")
        raw = base64.b64decode(value["base64"], validate=True)
        array = np.frombuffer(raw, dtype="<f4").reshape(shape).astype(np.float32)
    except (KeyError, TypeError, ValueError) as exc:  # binascii.Error is a ValueError
        problems.append(f"{where} is not a base64 float32 array ({type(exc).__name__}: {exc})")
        return _BAD
    if not np.isfinite(array).all():
        problems.append(f"{where} holds NaN or infinite values")
        return _BAD
    return array
