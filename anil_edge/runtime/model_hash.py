"""The identity of an ONNX model's graph and weights, computed from its bytes without ``onnx``.

An enrollment state is bound to the backbone that computed its embeddings. The binding must
hash what the runtime actually runs — not a hash the file's own metadata claims, which a copied
or edited file can carry unchanged. A ``ModelProto`` is a protobuf message: the hash covers
every top-level field except ``metadata_props`` (field 14), so it equals the exporter's
``graph_sha256`` (the same message with the metadata removed, serialised) and does not change
when only the metadata is rewritten.
"""

from __future__ import annotations

import hashlib

from ..errors import ModelError

METADATA_PROPS_FIELD = 14  # onnx.proto: ModelProto.metadata_props


def model_sha256(data: bytes) -> tuple[str, str]:
    """SHA-256 of the serialised ``ModelProto`` ``data`` without its ``metadata_props``, and of the
    whole file, in one pass over the bytes."""
    digest, whole = hashlib.sha256(), hashlib.sha256(data)
    view, pos, end = memoryview(data), 0, len(data)
    while pos < end:
        start = pos
        key, pos = _varint(data, pos)
        field, wire = key >> 3, key & 7
        if wire == 0:
            _, pos = _varint(data, pos)
        elif wire == 2:
            length, pos = _varint(data, pos)
            pos += length
        elif wire in (1, 5):
            pos += 8 if wire == 1 else 4
        else:
            raise ModelError(f"not an ONNX model: protobuf wire type {wire} at byte {start}")
        if pos > end:
            raise ModelError(f"not an ONNX model: a field at byte {start} runs past the end of the file")
        if field != METADATA_PROPS_FIELD:
            digest.update(view[start:pos])
    return digest.hexdigest(), whole.hexdigest()


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= len(data) or shift > 63:
            raise ModelError(f"not an ONNX model: a malformed varint at byte {pos}")
        byte = data[pos]
        value |= (byte & 0x7F) << shift
        pos += 1
        if not byte & 0x80:
            return value, pos
        shift += 7
