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
import pandas as pd

from ssassoc.core.columns import SSSOURCE_COLUMNS, SSSOURCE_REQUIRED
from ssassoc.schemas import SchemaVersion, latest_version, load_schema_json

__all__ = ["encode_ss_sources", "zigzag_varint", "zigzag_varints"]

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


_SHIFTS = np.arange(0, 70, 7, dtype=np.uint64)  # 10 groups of 7 bits hold any 64-bit value
_THRESHOLDS = np.uint64(1) << np.arange(7, 64, 7, dtype=np.uint64)


def zigzag_varints(values: np.ndarray[Any, Any]) -> list[bytes]:
    """:func:`zigzag_varint` of every int64 in ``values`` at once (ids are 8-9 byte varints:
    a Python loop per byte costs more than the rest of a record)."""
    v = np.asarray(values, dtype=np.int64)
    zigzag = (v.view(np.uint64) << np.uint64(1)) ^ (v >> 63).view(np.uint64)
    n_bytes = 1 + np.count_nonzero(zigzag[:, None] >= _THRESHOLDS, axis=1)
    groups = ((zigzag[:, None] >> _SHIFTS) & np.uint64(0x7F)).astype(np.uint8)
    groups[np.arange(10) < (n_bytes - 1)[:, None]] |= 0x80  # continuation bits
    flat = groups.tobytes()
    return [flat[10 * i : 10 * i + k] for i, k in enumerate(n_bytes.tolist())]


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
        # The fixed-size middle of a record with no nulls (4 doubles, then branch byte 2 +
        # value per nullable field) as a byte row: values are scattered into it by column.
        template = np.frombuffer(
            self.all_present.pack(*([0.0] * 4), *[x for _ in self.codes for x in (2, 0.0)]), dtype=np.uint8
        )
        self.template = template.copy()
        offsets, position = [], 32
        for code in self.codes:
            offsets.append(position + 1)
            position += 1 + (4 if code == "f" else 8)
        self.f8_names = [
            *self.required_doubles,
            *(n for n, c in zip(self.nullable, self.codes, strict=True) if c == "d"),
        ]
        self.f4_names = [n for n, c in zip(self.nullable, self.codes, strict=True) if c == "f"]
        f8_offsets = [0, 8, 16, 24, *(o for o, c in zip(offsets, self.codes, strict=True) if c == "d")]
        f4_offsets = [o for o, c in zip(offsets, self.codes, strict=True) if c == "f"]
        self.f8_bytes = (np.asarray(f8_offsets)[:, None] + np.arange(8)).ravel()
        self.f4_bytes = (np.asarray(f4_offsets)[:, None] + np.arange(4)).ravel()

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
    if value is None or value is pd.NA or value is np.ma.masked or (isinstance(value, float) and math.isnan(value)):
        return b"\x00"
    raw = str(value).encode()
    return b"\x02" + zigzag_varint(len(raw)) + raw


def encode_ss_sources(columns: Mapping[str, Any], version: SchemaVersion | None = None) -> list[tuple[int, bytes]]:
    """(diaSourceId, framed ssSource bytes) per row of the column arrays; NaN/masked -> null.

    The float fields of all rows without nulls are written at once: values go into a
    (rows, bytes) matrix by column, so Python only joins five pieces per record.
    Rows with a null take the per-field path.
    """
    layout = _layout(version or latest_version())
    n_rows = len(columns[layout.head[0]])
    if n_rows == 0:
        return []
    id_array = np.asarray(columns["diaSourceId"], dtype=np.int64)
    ids = id_array.tolist()
    id_bytes = zigzag_varints(id_array)
    object_bytes = zigzag_varints(np.asarray(columns["ssObjectId"], dtype=np.int64))
    designations = [_designation(d) for d in columns["designation"]]
    nullable = np.array([np.asarray(columns[n], dtype=float) for n in layout.nullable])  # (fields, rows)
    with np.errstate(invalid="ignore"):
        nulls = ~np.isfinite(nullable)
    for j, name in enumerate(layout.nullable):
        mask = getattr(columns[name], "mask", None)
        if mask is not None:
            nulls[j] |= np.asarray(mask, dtype=bool)
    last = columns[layout.last]
    last_mask = np.asarray(getattr(last, "mask", np.zeros(n_rows, bool)), dtype=bool).tolist()
    last_values = np.asarray(last).tolist()
    row_has_null = nulls.any(axis=0)

    width = len(layout.template)
    matrix = np.repeat(layout.template[None, :], n_rows, axis=0)
    with np.errstate(over="ignore", invalid="ignore"):
        f8 = np.array([np.asarray(columns[n], dtype=float) for n in layout.f8_names], dtype="<f8").T
        f4 = np.array([np.asarray(columns[n], dtype=float) for n in layout.f4_names], dtype="<f4").T
    matrix[:, layout.f8_bytes] = np.ascontiguousarray(f8).view(np.uint8)
    matrix[:, layout.f4_bytes] = np.ascontiguousarray(f4).view(np.uint8)
    middles = matrix.tobytes()

    header = layout.header
    out: list[tuple[int, bytes]] = []
    for i in range(n_rows):
        if row_has_null[i]:
            middle = _middle_with_nulls(layout, columns, i, nulls[:, i], nullable[:, i])
        else:
            middle = middles[i * width : (i + 1) * width]
        rank = b"\x00" if last_mask[i] else b"\x02" + zigzag_varint(int(last_values[i]))
        body = b"".join((header, id_bytes[i], object_bytes[i], designations[i], middle, rank))
        out.append((ids[i], body))
    return out


def _middle_with_nulls(
    layout: _Layout, columns: Mapping[str, Any], row: int, nulls: np.ndarray[Any, Any], values: np.ndarray[Any, Any]
) -> bytes:
    packer = layout.struct_for(nulls)
    required = [float(columns[n][row]) for n in layout.required_doubles]
    args = [x for null, v in zip(nulls.tolist(), values.tolist(), strict=True) for x in ((0,) if null else (2, v))]
    return packer.pack(*required, *args)
