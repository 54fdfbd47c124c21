"""Confluent framing: round trips and every way bytes can be wrong."""

from __future__ import annotations

import contextlib
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ssassoc.schemas import latest_version, load_sample_data
from ssassoc.worker import wire


@pytest.fixture(scope="module")
def framed_event() -> bytes:
    return wire.encode("visitEvent", load_sample_data("visitEvent", latest_version())[0])


def test_header_is_magic_and_big_endian_schema_id(framed_event: bytes) -> None:
    assert framed_event[:5] == struct.pack(">bI", 0, latest_version().schema_id)
    assert wire.peek_schema_id(framed_event) == latest_version().schema_id


@pytest.mark.parametrize("data", [None, b"", b"\x00\x00\x00"])
def test_too_short_is_undecodable(data: bytes | None) -> None:
    with pytest.raises(wire.UndecodableError):
        wire.decode("visitEvent", data)


def test_wrong_magic_is_undecodable(framed_event: bytes) -> None:
    with pytest.raises(wire.UndecodableError, match="magic"):
        wire.decode("visitEvent", b"\x01" + framed_event[1:])


def test_unknown_schema_id(framed_event: bytes) -> None:
    with pytest.raises(wire.UnknownSchemaError, match="unknown schema id 999"):
        wire.decode("visitEvent", struct.pack(">bI", 0, 999) + framed_event[5:])


def test_truncated_body_is_undecodable(framed_event: bytes) -> None:
    with pytest.raises(wire.UndecodableError):
        wire.decode("visitEvent", framed_event[:-10])


def test_trailing_bytes_are_undecodable(framed_event: bytes) -> None:
    with pytest.raises(wire.UndecodableError, match="trailing"):
        wire.decode("visitEvent", framed_event + b"\x00")


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_random_bytes_only_raise_wire_errors(data: bytes) -> None:
    with contextlib.suppress(wire.WireError):
        wire.decode("visitEvent", b"\x00\x00\x00\x00\x64" + data)
