"""Emoji drawn by different designers: a cross-design RGB few-shot benchmark (``dataset="emoji"``).

Each source is one designer's set, as its npm package unpacks (``scripts/fetch_emoji.sh``):

- ``emoji-datasource-<vendor>`` (google, twitter, facebook, apple; MIT): ``emoji.json`` and
  ``img/<vendor>/64/<image>`` (64-px RGBA PNGs);
- OpenMoji (CC-BY-SA-4.0): ``data/openmoji.json`` and ``color/72x72/<hexcode>.png``, from its PNG
  release (the npm package holds SVGs only: the loader says so).

One class per emoji (its Unicode code points, ``unified``). Skin-tone variants are dropped: each
class is the default-tone image, and the "Component" category (the bare skin-tone swatches and
hair parts) is left out. Groups are Unicode's subcategories (``face-smiling``, ``animal-mammal``,
...); drawers are the designers, so ``distinct_drawers`` tasks enroll one designer's rendering
and recognise another's — the photo-product situation. Classes drawn by fewer than two of the
given designers are left out.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..runtime.documents import parse_json
from ..runtime.metadata import Preprocessing
from .decode import decode, stack
from .image_set import ImageSet

SKIPPED_CATEGORIES = ("Component",)  # skin-tone swatches and hair components: not objects of their own
MIN_DESIGNERS = 2  # a class needs two renderings for cross-design tasks


def load_emoji(sources: tuple[str, ...], prep: Preprocessing) -> ImageSet:
    """Every emoji drawn by at least two of the designers in ``sources`` (one package folder each)."""
    if len(sources) < MIN_DESIGNERS:
        raise InputError(f"dataset 'emoji' needs the sets of at least {MIN_DESIGNERS} designers (one --data folder "
                         f"each, see scripts/fetch_emoji.sh), found {len(sources)}")
    sets = [_designer_set(Path(s)) for s in sources]
    names = [name for name, _ in sets]
    if len(set(names)) != len(names):
        raise InputError(f"dataset 'emoji': the same designer given twice: {names}")
    info: dict[str, tuple[str, str]] = {}  # code -> (short name, subcategory)
    drawn: dict[str, list[tuple[int, Path]]] = {}
    for drawer, (_, entries) in enumerate(sets):
        for code, (short, group, path) in entries.items():
            info.setdefault(code, (short, group))
            drawn.setdefault(code, []).append((drawer, path))
    codes = sorted(c for c, found in drawn.items() if len(found) >= MIN_DESIGNERS)
    if not codes:
        raise InputError(f"dataset 'emoji': no emoji is drawn by {MIN_DESIGNERS} of the designers {names}")
    pixels, labels, drawers = [], [], []
    for label, code in enumerate(codes):
        for drawer, path in drawn[code]:
            pixels.append(decode(path, prep, str(path)))
            labels.append(label)
            drawers.append(drawer)
    return ImageSet(stack(pixels, prep), np.asarray(labels, np.int64), tuple(f"{info[c][0]} ({c})" for c in codes),
                    tuple(info[c][1] for c in codes), np.asarray(drawers, np.int64))


def _designer_set(root: Path) -> tuple[str, dict[str, tuple[str, str, Path]]]:
    """(designer, {code: (short name, subcategory, image path)}) of one package folder."""
    if not root.is_dir():
        raise InputError(f"{root}: no such folder (expected an emoji set: see scripts/fetch_emoji.sh)")
    if (root / "emoji.json").is_file():
        return _emoji_datasource(root)
    if (root / "data" / "openmoji.json").is_file():
        return _openmoji(root)
    raise InputError(f"{root}: not an emoji set: expected emoji.json and img/<vendor>/64/ (an emoji-datasource-* "
                     "package) or data/openmoji.json and color/72x72/ (OpenMoji's PNG release)")


def _emoji_datasource(root: Path) -> tuple[str, dict[str, tuple[str, str, Path]]]:
    vendors = sorted(p.name for p in (root / "img").iterdir() if (p / "64").is_dir()) if (root / "img").is_dir() else []
    if len(vendors) != 1:
        raise InputError(f"{root}: expected one designer's images in img/<vendor>/64/, found {vendors or 'none'}")
    vendor, folder = vendors[0], root / "img" / vendors[0] / "64"
    entries = {}
    for e in _json_list(root / "emoji.json"):
        if not isinstance(e, dict) or not all(isinstance(e.get(k), str) for k in ("unified", "image", "category")):
            raise InputError(f"{root / 'emoji.json'}: entries need string unified, image and category fields, found "
                             f"{str(e)[:80]}")
        path = _inside(folder, e["image"], root / "emoji.json")
        if e["category"] not in SKIPPED_CATEGORIES and e.get(f"has_img_{vendor}", True) and path.is_file():
            entries[e["unified"].upper()] = (str(e.get("short_name") or e["unified"]), str(e.get("subcategory", "")), path)
    return vendor, entries


def _inside(folder: Path, name: str, manifest: Path) -> Path:
    """``folder / name``, refused unless it is a plain file name inside ``folder`` (a manifest names
    no ``..``, absolute path, or symlink out of its set)."""
    path = folder / name
    if "/" in name or "\\" in name or name in ("", ".", "..") or Path(name).is_absolute() or \
            (path.exists() and not os.path.realpath(path).startswith(os.path.realpath(folder) + os.sep)):
        raise InputError(f"{manifest}: entry image {name[:80]!r} is not a file name inside {folder.name}/; expected "
                         "names like 1f600.png")
    return path


def _openmoji(root: Path) -> tuple[str, dict[str, tuple[str, str, Path]]]:
    folder = root / "color" / "72x72"
    if not folder.is_dir():
        raise InputError(f"{root}: OpenMoji without color/72x72/ PNGs (the npm package has SVGs only): unpack "
                         "OpenMoji's openmoji-72x72-color.zip release into color/72x72/")
    entries = {}
    for e in _json_list(root / "data" / "openmoji.json"):
        if not isinstance(e, dict) or not isinstance(e.get("hexcode"), str):
            raise InputError(f"{root / 'data' / 'openmoji.json'}: entries need a string hexcode, found {str(e)[:80]}")
        path = folder / f"{e['hexcode']}.png"
        if e.get("skintone") or e.get("group") in ("extras-openmoji", "extras-unicode", "component") or not path.is_file():
            continue
        entries[e["hexcode"].upper()] = (str(e.get("annotation") or e["hexcode"]), str(e.get("subgroups", "")), path)
    return "openmoji", entries


def _json_list(path: Path) -> list:
    try:
        data = parse_json(path.read_bytes())
    except (OSError, ValueError) as exc:
        raise InputError(f"{os.fspath(path)}: not readable JSON ({exc})") from None
    if not isinstance(data, list):
        raise InputError(f"{os.fspath(path)}: expected a list of emoji entries, found {type(data).__name__}")
    return data
