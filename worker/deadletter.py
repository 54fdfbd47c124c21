"""Dead letters: classify why an event was rejected and wrap its original bytes.

The dead-letter message keeps the original key; its value is a framed
``deadLetter`` record (original value and headers inside, unchanged) and its
Kafka headers repeat the reason (``ssassoc.error.class``...) so tools can
filter without decoding.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ssassoc.core import ExposureError
from ssassoc.core.version import __version__

from . import wire
from .ephemeris import coverage_error_types
from .events import SchemaInvalidError

__all__ = [
    "ERROR_CLASSES",
    "InputMessage",
    "OutputMessage",
    "RejectedEvent",
    "classify",
    "dead_letter_message",
    "kafka_headers",
    "message_headers",
]

ERROR_CLASSES: tuple[str, ...] = (
    "undecodable",
    "unknown_schema",
    "schema_invalid",
    "bad_exposure",
    "duplicate_ids",
    "no_valid_sources",
    "outside_ephemeris_coverage",
    "too_large",
    "too_many_sources",
    "invalid_event",
    "internal_error",
)
"""Every value of the ``errorClass`` field / ``ssassoc.error.class`` header."""


class RejectedEvent(ValueError):
    """An event the worker refuses, with its dead-letter class."""

    def __init__(self, error_class: str, message: str) -> None:
        if error_class not in ERROR_CLASSES:
            raise ValueError(f"unknown error class {error_class!r}")
        super().__init__(message)
        self.error_class = error_class


@dataclass(frozen=True)
class InputMessage:
    """What the worker needs of a consumed Kafka message (decoupled from confluent_kafka)."""

    topic: str
    partition: int
    offset: int
    value: bytes | None
    key: bytes | None = None
    headers: list[tuple[str, bytes | None]] = field(default_factory=list)
    timestamp_ms: int | None = None


@dataclass(frozen=True)
class OutputMessage:
    topic: str
    key: bytes | None
    value: bytes
    headers: list[tuple[str, bytes | None]] = field(default_factory=list)


def message_headers(raw: Any) -> list[tuple[str, bytes | None]]:
    """Headers of a confluent_kafka message as a list of (key, bytes or None)."""
    headers = raw.headers() or []
    items = headers.items() if isinstance(headers, dict) else headers
    return [(k, v.encode() if isinstance(v, str) else v) for k, v in items]


def kafka_headers(headers: list[tuple[str, bytes | None]]) -> list[tuple[str, str | bytes | None]]:
    """The same list, typed as confluent_kafka's ``produce`` wants it."""
    return list(headers)


def classify(exc: BaseException) -> str:
    """The dead-letter class of an exception raised while processing one event."""
    if isinstance(exc, RejectedEvent):
        return exc.error_class
    if isinstance(exc, wire.UnknownSchemaError):
        return "unknown_schema"
    if isinstance(exc, wire.UndecodableError):
        return "undecodable"
    if isinstance(exc, SchemaInvalidError):
        return "schema_invalid"
    if isinstance(exc, ExposureError):
        return "bad_exposure"
    if isinstance(exc, coverage_error_types()):
        return "outside_ephemeris_coverage"
    if isinstance(exc, ValueError | RuntimeError | KeyError | TypeError):
        return "invalid_event"
    return "internal_error"


def dead_letter_message(
    message: InputMessage, error_class: str, exc: BaseException, topic: str
) -> OutputMessage:
    """The dead-letter message for ``message``, rejected as ``error_class`` because of ``exc``."""
    error_message = str(exc) or type(exc).__name__
    failed_at = datetime.now(UTC).isoformat()
    record: dict[str, Any] = {
        "errorClass": error_class,
        "errorType": type(exc).__name__,
        "errorMessage": error_message[:4000],
        "sourceTopic": message.topic,
        "sourcePartition": message.partition,
        "sourceOffset": message.offset,
        "sourceTimestampMs": message.timestamp_ms,
        "workerVersion": __version__,
        "failedAtUtc": failed_at,
        "originalKey": message.key,
        "originalValue": message.value,
        "originalHeaders": [{"key": k, "value": v} for k, v in message.headers],
    }
    # Original headers first (unchanged), then ours.
    headers: list[tuple[str, bytes | None]] = [*message.headers,
        ("ssassoc.error.class", error_class.encode()),
        ("ssassoc.error.type", type(exc).__name__.encode()),
        ("ssassoc.error.message", error_message[:1000].encode("utf-8", "replace")),
        ("ssassoc.source.topic", message.topic.encode()),
        ("ssassoc.source.partition", str(message.partition).encode()),
        ("ssassoc.source.offset", str(message.offset).encode()),
        ("ssassoc.worker.version", __version__.encode()),
    ]
    return OutputMessage(
        topic=topic, key=message.key, value=wire.encode("deadLetter", record), headers=headers
    )
