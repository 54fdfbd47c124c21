"""The hand-written ssSource encoder is byte-for-byte fastavro's, nulls included."""

from __future__ import annotations

import io
import struct

import fastavro
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from ssassoc.core.columns import SSSOURCE_COLUMNS
from ssassoc.schemas import latest_version, load_schema
from ssassoc.worker import wire
from ssassoc.worker.processing import ss_source_records
from ssassoc.worker.sssource_codec import encode_ss_sources, zigzag_varint

FLOATS = st.one_of(st.floats(allow_nan=True, allow_infinity=False, width=32), st.just(np.nan))


@st.composite
def columns(draw: st.DrawFn) -> dict[str, np.ndarray]:
    n = draw(st.integers(0, 6))
    out: dict[str, np.ndarray] = {}
    for spec in SSSOURCE_COLUMNS:
        if spec.avro_type == "long":
            out[spec.name] = np.array(draw(st.lists(st.integers(-(2**63), 2**63 - 1), min_size=n, max_size=n)),
                                      dtype=np.int64)
        elif spec.avro_type == "int":
            out[spec.name] = np.array(draw(st.lists(st.integers(-(2**31), 2**31 - 1), min_size=n, max_size=n)),
                                      dtype=np.int32)
        elif spec.avro_type == "string":
            out[spec.name] = np.array(draw(st.lists(st.one_of(st.none(), st.text(max_size=12)),
                                                    min_size=n, max_size=n)), dtype=object)
        elif spec.name in ("eclLambda", "eclBeta", "galLon", "galLat"):
            out[spec.name] = np.array(draw(st.lists(st.floats(-400, 400), min_size=n, max_size=n)), float)
        else:
            out[spec.name] = np.array(draw(st.lists(FLOATS, min_size=n, max_size=n)), dtype=float)
    return out


@settings(max_examples=200, deadline=None)
@given(columns())
def test_matches_fastavro(cols: dict[str, np.ndarray]) -> None:
    schema = load_schema("ssSource", latest_version())
    expected = []
    for record in ss_source_records(cols):
        out = io.BytesIO()
        out.write(struct.pack(">bI", 0, latest_version().schema_id))
        fastavro.schemaless_writer(out, schema, record)
        expected.append((record["diaSourceId"], out.getvalue()))
    assert encode_ss_sources(cols) == expected
    for _, value in encode_ss_sources(cols):
        wire.decode("ssSource", value)  # and it decodes


@given(st.integers(-(2**63), 2**63 - 1))
def test_zigzag_varint(value: int) -> None:
    out = io.BytesIO()
    fastavro.schemaless_writer(out, {"type": "long"}, value)
    assert zigzag_varint(value) == out.getvalue()


@given(st.lists(st.integers(-(2**63), 2**63 - 1), max_size=20))
def test_zigzag_varints_match_the_scalar_encoder(values: list[int]) -> None:
    from ssassoc.worker.sssource_codec import zigzag_varints

    edges = [0, -1, 1, 63, 64, -64, -65, 2**62, -(2**63), 2**63 - 1]
    array = np.array(values + edges, dtype=np.int64)
    assert zigzag_varints(array) == [zigzag_varint(v) for v in values + edges]
