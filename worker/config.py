"""Worker settings: typed, documented, validated; from flags, ``SSASSOC_*`` and ``KAFKA_*``.

Precedence, highest first: command-line flags, ``SSASSOC_<FIELD>`` environment
variables, defaults. Any librdkafka property can be passed through, lowest to
highest: ``KAFKA_<KEY>``, ``SSASSOC_KAFKA_<KEY>`` (``KAFKA_SASL_PASSWORD`` ->
``sasl.password``) and ``--kafka key=value``. Properties the worker sets
itself to keep its guarantees are refused rather than silently overridden.
"""

from __future__ import annotations

import argparse
import os
import re
import socket
import types
import typing
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = [
    "GUARANTEED_KAFKA_KEYS",
    "WorkerSettings",
    "add_settings_arguments",
    "kafka_from_env",
    "parse_kafka_pairs",
    "redact",
    "settings_from_args",
]

ProcessingGuarantee = Literal["exactly-once", "at-least-once"]

GUARANTEED_KAFKA_KEYS: frozenset[str] = frozenset(
    {
        "enable.auto.commit",
        "enable.auto.offset.store",
        "enable.idempotence",
        "transactional.id",
        "isolation.level",
        "group.id",
        "enable.partition.eof",
    }
)
"""librdkafka keys the worker owns (its delivery guarantees depend on them)."""

_SECRET_PARTS = ("password", "secret", "token", "pem", "key", "oauthbearer.config", "jaas")

# Kubernetes "service links" put KAFKA_PORT=tcp://..., KAFKA_SERVICE_HOST=... into every pod
# when a Service is named "kafka"; they are not librdkafka settings.
_K8S_SERVICE_LINK = re.compile(r"^(PORT|SERVICE_HOST|SERVICE_PORT.*|PORT_\d+_.*)$")


def _default_instance_id() -> str:
    return socket.gethostname() or "worker"


class WorkerSettings(BaseSettings):
    """Settings of ``ssassoc worker`` and ``ssassoc replay``."""

    model_config = SettingsConfigDict(
        env_prefix="SSASSOC_", extra="forbid", validate_default=True, frozen=True
    )

    bootstrap_servers: str = Field(
        "127.0.0.1:9092",
        description="Kafka bootstrap servers, comma-separated host:port.",
        min_length=1,
    )
    group_id: str = Field(
        "ssassoc-worker",
        description="Consumer group of the workers; all replicas share it to share partitions.",
        min_length=1,
    )
    instance_id: str = Field(
        default_factory=_default_instance_id,
        description=(
            "Stable id of this replica (default: host name). Part of the transactional id, so a "
            "restarted replica fences its previous incarnation (exactly-once)."
        ),
        min_length=1,
    )
    input_topic: str = Field(
        "ssassoc.visit-events", description="Topic of visit events (visitEvent records).", min_length=1
    )
    output_topic: str = Field(
        "ssassoc.ss-sources",
        description="Topic of ssSource records, one message per association, key = diaSourceId.",
        min_length=1,
    )
    unassociated_topic: str | None = Field(
        None,
        description="Optional topic of the unassociated predicted objects, one message per event.",
    )
    dead_letter_topic: str = Field(
        "ssassoc.dead-letters",
        description="Topic of rejected input messages (deadLetter records with the original bytes).",
        min_length=1,
    )
    ephemeris_store: Path | None = Field(
        None,
        description=(
            "Path of the ephemeris store (built by `ssassoc ephem build`); a .csv file is read as a "
            "fixed object table (development and tests only)."
        ),
    )
    ephemeris_visit_cache_radius_deg: float = Field(
        0.0,
        ge=0,
        le=90,
        description=(
            "Visit cache of the ephemeris store [deg]: the detectors of a visit share their midpoint "
            "time, so from the second detector on the store is queried once over the detector's cone "
            "widened by this much and the visit's detectors are answered from that (the objects a "
            "per-detector query returns). Default 0 = off (one store query per detector): with the "
            "store's compiled query kernel a direct query is faster than an answer from a visit cone "
            "(docs/worker.md). 4.2 (Rubin's focal-plane diameter, 2 x 2.05 deg) turns it on, e.g. "
            "where the store runs its numpy fallback path."
        ),
    )
    ephemeris_visit_cache_entries: int = Field(
        4, ge=1, le=1000, description="Visit cones kept by the ephemeris visit cache (least recently used go)."
    )
    processing_guarantee: ProcessingGuarantee = Field(
        "exactly-once",
        description=(
            "exactly-once: Kafka transactions (outputs and input offsets commit atomically); "
            "at-least-once: idempotent producer, flush and check every delivery, then commit."
        ),
    )
    max_dist_arcsec: float = Field(
        1.0, gt=0, le=3600, description="Association radius [arcsec] (Rubin's default: 1.0)."
    )
    max_event_bytes: int = Field(
        8_000_000, gt=0, description="Events larger than this [bytes] are dead-lettered unread."
    )
    max_sources: int = Field(
        200_000, gt=0, description="Events with more sources than this are dead-lettered."
    )
    batch_size: int = Field(
        500, ge=1, le=100_000, description="Most messages taken from the consumer in one call."
    )
    process_batch_size: int = Field(
        32,
        ge=1,
        le=10_000,
        description=(
            "Most events associated in one call when several are already fetched (one association "
            "over all of them is cheaper per event); 1 = one by one. Never waits to fill a batch."
        ),
    )
    commit_interval_s: float = Field(
        1.0, ge=0, le=600, description="Commit (checkpoint) at least this often [s]; 0 = every batch."
    )
    commit_every_events: int = Field(
        1000, ge=1, description="Commit after this many events even if the interval has not passed."
    )
    poll_timeout_s: float = Field(
        0.2, gt=0, le=60, description="How long one consume call waits for messages [s]."
    )
    rebalance_timeout_s: float = Field(
        30.0,
        gt=0,
        le=600,
        description="Bound on flushing and committing when partitions are revoked or on shutdown [s].",
    )
    retry_initial_s: float = Field(
        0.5, gt=0, le=60, description="First wait before retrying a transient fault [s]."
    )
    retry_max_s: float = Field(
        30.0, gt=0, le=3600, description="Longest wait between retries of a transient fault [s]."
    )
    health_host: str = Field(
        "127.0.0.1",
        description="Address of the health/metrics HTTP endpoint (0.0.0.0 in a container).",
    )
    health_port: int | None = Field(
        None,
        ge=0,
        le=65535,
        description="Port of the HTTP endpoint (/healthz, /readyz, /metrics); unset = no endpoint.",
    )
    liveness_timeout_s: float = Field(
        60.0, gt=0, description="/healthz fails when the loop has not turned for this long [s]."
    )
    heartbeat_file: Path | None = Field(
        None, description="File touched by the loop at most once per second (file-based liveness)."
    )
    metrics: bool = Field(True, description="Serve Prometheus text metrics on /metrics.")
    summary_interval_s: float = Field(
        30.0, gt=0, description="Interval of the throughput/lag summary log event [s]."
    )
    log_format: Literal["json", "console"] | None = Field(
        None, description="Log rendering; default: console on a terminal, JSON otherwise."
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        "INFO", description="Lowest level logged."
    )
    kafka: dict[str, str] = Field(
        default_factory=dict,
        description="Extra librdkafka properties (KAFKA_<KEY>, SSASSOC_KAFKA_<KEY>, --kafka k=v).",
    )

    @field_validator("kafka")
    @classmethod
    def _kafka_keys_allowed(cls, value: dict[str, str]) -> dict[str, str]:
        owned = sorted(GUARANTEED_KAFKA_KEYS & value.keys())
        if owned:
            raise ValueError(
                f"librdkafka properties {owned} are set by the worker itself "
                "(use --group-id / --processing-guarantee instead)"
            )
        return value

    @model_validator(mode="after")
    def _check(self) -> WorkerSettings:
        if self.retry_max_s < self.retry_initial_s:
            raise ValueError("retry_max_s must be >= retry_initial_s")
        topics = [self.input_topic, self.output_topic, self.dead_letter_topic]
        if self.unassociated_topic:
            topics.append(self.unassociated_topic)
        if len(set(topics)) != len(topics):
            raise ValueError(f"input, output, unassociated and dead-letter topics must differ: {topics}")
        return self

    # -- derived ------------------------------------------------------------------
    @property
    def transactional_id(self) -> str:
        return f"ssassoc-{self.group_id}-{self.instance_id}"

    def common_kafka(self) -> dict[str, Any]:
        """Client properties shared by consumer, producer and admin client."""
        conf: dict[str, Any] = dict(self.kafka)
        # KAFKA_BOOTSTRAP_SERVERS is honoured unless --bootstrap-servers/SSASSOC_ was given.
        if "bootstrap_servers" in self.model_fields_set or "bootstrap.servers" not in conf:
            conf["bootstrap.servers"] = self.bootstrap_servers
        return conf

    def safe_dump(self) -> dict[str, Any]:
        """All settings with secrets redacted, for logging."""
        dumped = self.model_dump(mode="json")
        dumped["kafka"] = redact(self.kafka)
        return dumped


def redact(conf: Mapping[str, Any]) -> dict[str, Any]:
    """Copy of a librdkafka dict with secret-looking values replaced."""
    return {
        key: ("***" if any(part in key.lower() for part in _SECRET_PARTS) else value)
        for key, value in conf.items()
    }


def kafka_from_env(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """librdkafka properties from ``KAFKA_<KEY>`` then ``SSASSOC_KAFKA_<KEY>`` (wins)."""
    environ = os.environ if environ is None else environ
    conf: dict[str, str] = {}
    for prefix in ("KAFKA_", "SSASSOC_KAFKA_"):
        for name, value in environ.items():
            if not name.startswith(prefix):
                continue
            rest = name[len(prefix) :]
            if not rest or (prefix == "KAFKA_" and _K8S_SERVICE_LINK.match(rest)):
                continue
            conf[rest.lower().replace("_", ".")] = value
    return conf


def parse_kafka_pairs(pairs: Sequence[str]) -> dict[str, str]:
    """``["a.b=1", "c=x=y"]`` -> ``{"a.b": "1", "c": "x=y"}``."""
    conf: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"--kafka expects KEY=VALUE, got {pair!r}")
        conf[key.strip()] = value
    return conf


# -- command line ------------------------------------------------------------------------


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def add_settings_arguments(
    parser: argparse.ArgumentParser, *, exclude: Sequence[str] = ()
) -> None:
    """One flag per settings field (default None = "not given", so env and defaults apply)."""
    group = parser.add_argument_group("settings (flag > SSASSOC_<NAME> env > default)")
    for name, field in WorkerSettings.model_fields.items():
        if name == "kafka" or name in exclude:
            continue
        help_text = f"{field.description} [env SSASSOC_{name.upper()}]"
        annotation = field.annotation
        args = typing.get_args(annotation)
        if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
            annotation = next(a for a in args if a is not type(None))
            args = typing.get_args(annotation)
        if annotation is bool:
            group.add_argument(
                _flag(name), dest=name, action=argparse.BooleanOptionalAction, default=None,
                help=help_text,
            )
        elif typing.get_origin(annotation) is Literal:
            group.add_argument(_flag(name), dest=name, choices=list(args), default=None, help=help_text)
        else:
            kind: type[int] | type[float] | type[str] = (
                int if annotation is int else float if annotation is float else str
            )
            group.add_argument(_flag(name), dest=name, type=kind, default=None, help=help_text)
    group.add_argument(
        "--kafka",
        dest="kafka_pairs",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="Any librdkafka property (repeatable) [env KAFKA_<KEY> or SSASSOC_KAFKA_<KEY>].",
    )


def settings_from_args(args: argparse.Namespace) -> WorkerSettings:
    """Settings from parsed flags over the process environment over defaults."""
    given = {
        name: getattr(args, name)
        for name in WorkerSettings.model_fields
        if name != "kafka" and getattr(args, name, None) is not None
    }
    kafka = kafka_from_env()
    kafka.update(parse_kafka_pairs(getattr(args, "kafka_pairs", []) or []))
    return WorkerSettings(**given, kafka=kafka)

