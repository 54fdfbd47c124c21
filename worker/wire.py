"""Confluent wire format: magic byte 0, 4-byte big-endian schema id, schemaless Avro.

The schema id is ``major * 100 + minor`` of the schema version (1.0 -> 100).
Each topic carries one record type (its *role*: ``visitEvent``, ``ssSource``,
``unassociatedSsObjects``, ``deadLetter``), so (role, id) names the schema;
every version ever shipped in ``ssassoc.schemas`` stays decodable (replay).
"""

from __future__ import annotations

import io
import struct
from typing import Any

import fastavro

from ssassoc.schemas import SchemaVersion, latest_version, load_schema, versions

__all__ = [
    "HEADER_SIZE",
    "MAGIC_BYTE",
    "UndecodableError",
    "UnknownSchemaError",
    "WireError",
    "decode",
    "encode",
    "peek_schema_id",
]

MAGIC_BYTE = 0
_HEADER = struct.Struct(">bI")
HEADER_SIZE = _HEADER.size


class WireError(ValueError):
    """A message is not a valid framed Avro record of the expected type."""


class UndecodableError(WireError):
    """Bytes that are not a framed Avro record (bad magic byte, truncated, trailing garbage)."""


class UnknownSchemaError(WireError):
    """A well-framed message whose schema id no shipped version matches."""


def peek_schema_id(data: bytes | None) -> int:
    """The schema id of a framed message; raises :class:`UndecodableError`."""
    if data is None or len(data) < HEADER_SIZE:
        raise UndecodableError(
            f"message of {0 if data is None else len(data)} bytes is shorter than the "
            f"{HEADER_SIZE}-byte Confluent header"
        )
    magic, schema_id = _HEADER.unpack_from(data)
    if magic != MAGIC_BYTE:
        raise UndecodableError(f"magic byte is {magic}, expected {MAGIC_BYTE}")
    return int(schema_id)


def _version_for(schema_id: int) -> SchemaVersion:
    version = SchemaVersion.from_schema_id(schema_id)
    if version not in versions():
        known = ", ".join(str(v.schema_id) for v in versions())
        raise UnknownSchemaError(f"unknown schema id {schema_id} (known: {known})")
    return version


def encode(record: str, value: dict[str, Any], version: SchemaVersion | None = None) -> bytes:
    """Frame ``value`` as ``record`` at ``version`` (default: latest)."""
    version = version or latest_version()
    out = io.BytesIO()
    out.write(_HEADER.pack(MAGIC_BYTE, version.schema_id))
    fastavro.schemaless_writer(out, load_schema(record, version), value)
    return out.getvalue()


def decode(record: str, data: bytes | None) -> tuple[SchemaVersion, dict[str, Any]]:
    """Decode a framed ``record`` of any shipped version; returns (version, value).

    Raises :class:`UndecodableError` or :class:`UnknownSchemaError`.
    """
    version = _version_for(peek_schema_id(data))
    assert data is not None  # peek_schema_id rejected None
    try:
        schema = load_schema(record, version)
    except KeyError as exc:
        raise UnknownSchemaError(f"schema id {version.schema_id} has no {record!r} record") from exc
    stream = io.BytesIO(data)
    stream.seek(HEADER_SIZE)
    try:
        value = fastavro.schemaless_reader(stream, schema, None)
    except Exception as exc:  # fastavro raises EOFError, UnicodeDecodeError, IndexError...
        raise UndecodableError(f"not a valid {record} v{version} Avro body: {exc!r}") from exc
    if stream.tell() != len(data):
        raise UndecodableError(
            f"{len(data) - stream.tell()} trailing bytes after the {record} v{version} record"
        )
    if not isinstance(value, dict):
        raise UndecodableError(f"{record} v{version} body decoded to {type(value).__name__}")
    return version, value
