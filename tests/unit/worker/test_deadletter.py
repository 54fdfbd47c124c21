"""Dead letters keep the original bytes and headers and say why and where from."""

from __future__ import annotations

import pytest

from ssassoc.core import ExposureError
from ssassoc.core.version import __version__
from ssassoc.worker import wire
from ssassoc.worker.deadletter import (
    ERROR_CLASSES,
    InputMessage,
    RejectedEvent,
    classify,
    dead_letter_message,
)
from ssassoc.worker.ephemeris import OutsideCoverageError
from ssassoc.worker.events import SchemaInvalidError


def test_envelope_keeps_original_bytes_and_headers() -> None:
    original = InputMessage(topic="events", partition=3, offset=1234, value=b"\x00\xffraw",
                            key=b"9:1", headers=[("trace", b"abc"), ("empty", None)],
                            timestamp_ms=1_700_000_000_000)
    out = dead_letter_message(original, "undecodable", wire.UndecodableError("bad magic"), "dlq")
    assert out.topic == "dlq" and out.key == b"9:1"
    _version, record = wire.decode("deadLetter", out.value)
    assert record["originalValue"] == b"\x00\xffraw"
    assert record["originalKey"] == b"9:1"
    assert record["originalHeaders"] == [{"key": "trace", "value": b"abc"},
                                         {"key": "empty", "value": None}]
    assert (record["sourceTopic"], record["sourcePartition"], record["sourceOffset"]) == ("events", 3, 1234)
    assert record["errorClass"] == "undecodable" and record["errorMessage"] == "bad magic"
    assert record["workerVersion"] == __version__
    headers = dict(out.headers)
    assert headers["ssassoc.error.class"] == b"undecodable"
    assert headers["ssassoc.source.offset"] == b"1234"
    assert headers["trace"] == b"abc"  # original headers carried too


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (wire.UndecodableError("x"), "undecodable"),
        (wire.UnknownSchemaError("x"), "unknown_schema"),
        (SchemaInvalidError("x"), "schema_invalid"),
        (ExposureError("x"), "bad_exposure"),
        (OutsideCoverageError("x"), "outside_ephemeris_coverage"),
        (RejectedEvent("too_large", "x"), "too_large"),
        (ValueError("x"), "invalid_event"),
        (ZeroDivisionError("x"), "internal_error"),
    ],
)
def test_classify(exc: BaseException, expected: str) -> None:
    assert classify(exc) == expected
    assert expected in ERROR_CLASSES


def test_unknown_class_is_refused() -> None:
    with pytest.raises(ValueError):
        RejectedEvent("whatever", "x")
