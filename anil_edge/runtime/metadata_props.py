"""anil-edge metadata as ONNX ``metadata_props``: written in format 2, read in formats 1 and 2.

Two keys: ``anil_edge.format_version`` and ``anil_edge.metadata`` (a JSON document, the
dataclasses of :mod:`.metadata` as :mod:`.documents` writes and reads them). The meta-learned
head rows travel as base64 float32 so that they round-trip bit-exactly. Reading checks every
field's type strictly (a string is not a bool, a float is not an int) and collects every
problem before raising :class:`ModelError`. A format-1 document (anil-edge 0.1) is rewritten
as format 2 first (:func:`.legacy.upgrade_metadata`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from ..errors import ModelError, raise_if_problems
from .documents import from_document, to_document
from .legacy import upgrade_metadata
from .metadata import ModelMetadata, check_metadata

FORMAT_VERSION = 2
READABLE_VERSIONS = (1, 2)
VERSION_KEY = "anil_edge.format_version"
METADATA_KEY = "anil_edge.metadata"


def metadata_document(meta: ModelMetadata) -> dict[str, Any]:
    """The JSON document (format 2) describing ``meta``; also the sidecar's content. Derived
    from the dataclasses' fields (:func:`.documents.to_document`): the keys are the field names."""
    return to_document(meta)


def metadata_to_props(meta: ModelMetadata) -> dict[str, str]:
    """The ``metadata_props`` entries (string to string) that describe ``meta``."""
    return {VERSION_KEY: str(FORMAT_VERSION), METADATA_KEY: json.dumps(metadata_document(meta), sort_keys=True)}


def metadata_from_props(props: Mapping[str, str], source: str = "model") -> ModelMetadata:
    """Parse ``metadata_props`` (format 1 or 2); :class:`ModelError` listing every problem."""
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
    meta = from_document(ModelMetadata, upgrade_metadata(doc) if version == "1" else doc, problems)
    raise_if_problems(problems, ModelError, f"{source} has malformed anil-edge metadata"
                      + (" (format 1, named as format 2 names it)" if version == "1" else ""))
    check_metadata(meta, source)  # type: ignore[arg-type]  # read: no problems were found
    return meta  # type: ignore[return-value]
