"""Fast Avro encoding of ssSource records straight from the core's column arrays.

fastavro spends ~65 us per 39-field record; an event has ~20 of them, more
than the rest of our per-event work. The ssSource layout is simple enough to
write directly: zig-zag varints for ``long``/``int``, a union branch index
before each nullable value (0 = null, 2 = zig-zag of branch 1), little-endian
IEEE floats/doubles, length-prefixed UTF-8 strings (Avro 1.11 spec, binary
encoding). ``tests/unit/worker/test_sssource_codec.py`` checks it byte for
byte against fastavro, nulls included.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Mapping
from typing import Any

import numpy as np

from ssassoc.core.columns import SSSOURCE_COLUMNS, SSSOURCE_REQUIRED
from ssassoc.schemas import SchemaVersion, latest_version, load_schema_json

__all__ = ["encode_ss_sources", "zigzag_varint"]

_HEADER = struct.Struct(">bI")


def _zigzag_varint(value: int) -> bytes:
    n = (value << 1) ^ (value >> 63)
    out = bytearray()
    while n & ~0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


_SMALL = {v: _zigzag_varint(v) for v in range(-1024, 1024)}  # ranks, string lengths


def zigzag_varint(value: int) -> bytes:
    """Avro ``long``/``int`` encoding."""
    small = _SMALL.get(value)
    return small if small is not None else _zigzag_varint(value)


class _Layout:
    """Field order and types of ssSource at one schema version, checked against the core's columns."""

    def __init__(self, version: SchemaVersion) -> None:
        fields = load_schema_json("ssSource", version)["fields"]
        names = [f["name"] for f in fields]
        if names != [c.name for c in SSSOURCE_COLUMNS]:
            raise RuntimeError("ssSource schema and core columns disagree; fix before encoding")
        # Expected layout: 2 longs, nullable string, 4 doubles, nullable float/double..., nullable int last.
        self.head = names[:3]
        self.required_doubles = names[3:7]
        self.nullable = names[7:-1]
        self.last = names[-1]
        codes = {"float": "f", "double": "d"}
        self.codes = [codes[f["type"][1]] for f in fields[7:-1]]
        if set(self.required_doubles) != {"eclLambda", "eclBeta", "galLon", "galLat"} or not all(
            c.name not in SSSOURCE_REQUIRED for c in SSSOURCE_COLUMNS[7:]
        ):
            raise RuntimeError("unexpected ssSource layout")
        self.header = _HEADER.pack(0, version.schema_id)
        self.all_present = struct.Struct("<4d" + "".join("B" + c for c in self.codes))
        self._by_mask: dict[bytes, struct.Struct] = {}

    def struct_for(self, nulls: np.ndarray[Any, Any]) -> struct.Struct:
        key = nulls.tobytes()
        found = self._by_mask.get(key)
        if found is None:
            fmt = "<4d" + "".join("B" if null else "B" + c for null, c in zip(nulls, self.codes, strict=True))
            found = self._by_mask[key] = struct.Struct(fmt)
        return found


_LAYOUTS: dict[SchemaVersion, _Layout] = {}


def _layout(version: SchemaVersion) -> _Layout:
    layout = _LAYOUTS.get(version)
    if layout is None:
        layout = _LAYOUTS[version] = _Layout(version)
    return layout


def _designation(value: Any) -> bytes:
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is np.ma.masked:
        return b"\x00"
    raw = str(value).encode()
    return b"\x02" + zigzag_varint(len(raw)) + raw


def encode_ss_sources(
    columns: Mapping[str, Any], version: SchemaVersion | None = None
) -> list[tuple[int, bytes]]:
    """(diaSourceId, framed ssSource bytes) per row of the column arrays; NaN/masked -> null."""
    layout = _layout(version or latest_version())
    n_rows = len(columns[layout.head[0]])
    if n_rows == 0:
        return []
    ids = np.asarray(columns["diaSourceId"], dtype=np.int64).tolist()
    objects = np.asarray(columns["ssObjectId"], dtype=np.int64).tolist()
    designations = list(columns["designation"])
    required = np.column_stack([np.asarray(columns[n], dtype=float) for n in layout.required_doubles])
    nullable = np.column_stack([np.asarray(columns[n], dtype=float) for n in layout.nullable])
    nulls = ~np.isfinite(nullable)
    for j, name in enumerate(layout.nullable):
        mask = getattr(columns[name], "mask", None)
        if mask is not None:
            nulls[:, j] |= np.asarray(mask, dtype=bool)
    last = columns[layout.last]
    last_mask = np.asarray(getattr(last, "mask", np.zeros(n_rows, bool)), dtype=bool)
    last_values = np.asarray(last).tolist()
    any_null = nulls.any(axis=1).tolist()
    required_rows = required.tolist()
    nullable_rows = nullable.tolist()
    out: list[tuple[int, bytes]] = []
    for i in range(n_rows):
        if any_null[i]:
            packer = layout.struct_for(nulls[i])
            args = [x for null, v in zip(nulls[i].tolist(), nullable_rows[i], strict=True)
                    for x in ((0,) if null else (2, v))]
        else:
            packer = layout.all_present
            args = [x for v in nullable_rows[i] for x in (2, v)]
        rank = b"\x00" if last_mask[i] else b"\x02" + zigzag_varint(int(last_values[i]))
        body = b"".join((
            layout.header, zigzag_varint(ids[i]), zigzag_varint(objects[i]),
            _designation(designations[i]), packer.pack(*required_rows[i], *args), rank,
        ))  # fmt: skip
        out.append((ids[i], body))
    return out
