"""anil-edge metadata as ONNX ``metadata_props``: written in format 3, read in formats 1, 2 and 3.

Two keys: ``anil_edge.format_version`` and ``anil_edge.metadata`` (a JSON document, the
dataclasses of :mod:`.metadata` as :mod:`.documents` writes and reads them). The meta-learned
head rows travel as base64 float32 so that they round-trip bit-exactly. Reading checks every
field's type strictly (a string is not a bool, a float is not an int) and collects every
problem before raising :class:`ModelError`. Older documents are rewritten as format 3 first
(:mod:`.legacy`): format 1 (anil-edge 0.1) as format 2, format 2 (no head scale or pull) as 3.
Format 3 is refused by older runtimes, which would ignore the head rule's scale and pull.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from ..errors import ModelError, raise_if_problems
from .documents import from_document, to_document
from .legacy import upgrade_adaptation, upgrade_metadata
from .metadata import ModelMetadata

FORMAT_VERSION = 3
READABLE_VERSIONS = (1, 2, 3)
VERSION_KEY = "anil_edge.format_version"
METADATA_KEY = "anil_edge.metadata"


def metadata_document(meta: ModelMetadata) -> dict[str, Any]:
    """The JSON document (format 3) describing ``meta``; also the sidecar's content. Derived
    from the dataclasses' fields (:func:`.documents.to_document`): the keys are the field names."""
    return to_document(meta)


def metadata_to_props(meta: ModelMetadata) -> dict[str, str]:
    """The ``metadata_props`` entries (string to string) that describe ``meta``."""
    return {VERSION_KEY: str(FORMAT_VERSION), METADATA_KEY: json.dumps(metadata_document(meta), sort_keys=True)}


def metadata_from_props(props: Mapping[str, str], source: str = "model") -> ModelMetadata:
    """Parse ``metadata_props`` (format 1, 2 or 3); :class:`ModelError` listing every problem."""
    if VERSION_KEY not in props or METADATA_KEY not in props:
        raise ModelError(
            f"{source} carries no anil-edge metadata: expected the metadata_props keys '{VERSION_KEY}' and "
            f"'{METADATA_KEY}', found keys: {sorted(props) or 'none'}. "
            "Export the backbone with anil-edge so that the runtime knows its preprocessing and head."
        )
    version = props[VERSION_KEY]
    if version not in {str(v) for v in READABLE_VERSIONS}:
        raise ModelError(
            f"{source} has anil-edge metadata format version {version!r}; this runtime reads versions "
            f"{', '.join(map(str, READABLE_VERSIONS))}. Re-export the model or install the matching anil-edge."
        )
    try:
        doc = json.loads(props[METADATA_KEY])
    except (json.JSONDecodeError, RecursionError) as exc:
        raise ModelError(f"{source} has corrupted anil-edge metadata (not valid JSON: {exc})") from None
    problems: list[str] = []
    if version == "1":
        doc = upgrade_metadata(doc)
    meta = from_document(ModelMetadata, upgrade_adaptation(doc) if version in ("1", "2") else doc, problems)
    older = f" (format {version}, named as format {FORMAT_VERSION} names it)" if version != str(FORMAT_VERSION) else ""
    raise_if_problems(problems, ModelError, f"{source} has malformed anil-edge metadata{older}")
    return meta  # type: ignore[return-value]  # read: no problems were found
