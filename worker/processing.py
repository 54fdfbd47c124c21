"""One visit event in, its output messages out: no Kafka, no logging set-up.

:class:`EventProcessor.process` decodes the event, builds the exposure and the
source table, asks the ephemeris provider for predicted objects, runs the
association task and frames one ssSource record per association (key =
``diaSourceId``). Bad input raises :class:`RejectedEvent` (or an exception
:func:`ssassoc.worker.deadletter.classify` maps to a dead-letter class);
faults worth retrying raise :class:`TransientFault`.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ssassoc.core import Exposure, SsSingleFrameAssociationConfig, SsSingleFrameAssociationTask
from ssassoc.core.columns import SSSOURCE_COLUMNS, SSSOURCE_REQUIRED
from ssassoc.core.inputs import DuplicateIdError

from . import wire
from .deadletter import InputMessage, OutputMessage, RejectedEvent
from .ephemeris import EphemerisProvider, coverage_error_types
from .events import SchemaInvalidError, exposure_from_event, unpack_source_columns
from .sssource_codec import encode_ss_sources

__all__ = [
    "EventLimits",
    "EventProcessor",
    "EventResult",
    "TransientFault",
    "ss_source_records",
]


class TransientFault(RuntimeError):
    """A fault outside the event (store unreadable, broker down): retry, never skip."""


@dataclass(frozen=True)
class EventLimits:
    max_event_bytes: int = 8_000_000
    max_sources: int = 200_000


@dataclass
class EventResult:
    """Outputs of one processed event and what the task-metadata log event reports."""

    outputs: list[OutputMessage]
    visit: int
    detector: int
    band: str
    counts: dict[str, int]
    timings_ms: dict[str, float]
    task_metadata: dict[str, Any] = field(default_factory=dict)


_FLOAT_TYPES = frozenset({"float", "double"})


def ss_source_records(table: Any) -> list[dict[str, Any]]:
    """Rows of ssSource columns (an astropy Table or a dict of arrays) as dicts; NaN/masked -> null."""
    n_rows = len(table[SSSOURCE_COLUMNS[0].name])
    columns: list[tuple[str, list[Any]]] = []
    for spec in SSSOURCE_COLUMNS:
        column = table[spec.name]
        mask = np.asarray(getattr(column, "mask", np.zeros(n_rows, bool)), dtype=bool)
        values = np.asarray(column)
        nullable = spec.name not in SSSOURCE_REQUIRED
        if spec.avro_type in _FLOAT_TYPES:
            as_float = values.astype(float)
            if nullable:
                mask = mask | ~np.isfinite(as_float)
            items: list[Any] = as_float.tolist()
        elif spec.avro_type in ("long", "int"):
            items = values.astype(np.int64).tolist() if not mask.all() else [None] * n_rows
        else:
            items = [
                None if (v is None or (isinstance(v, float) and math.isnan(v))) else str(v) for v in values.tolist()
            ]
        if mask.any():
            items = [None if m else v for v, m in zip(items, mask.tolist(), strict=True)]
        columns.append((spec.name, items))
    names = [name for name, _ in columns]
    return [dict(zip(names, row, strict=True)) for row in zip(*(c for _, c in columns), strict=True)]


class EventProcessor:
    """Turns framed visit events into framed ssSource (and unassociated-object) messages."""

    def __init__(
        self,
        provider: EphemerisProvider,
        *,
        output_topic: str,
        unassociated_topic: str | None = None,
        limits: EventLimits | None = None,
        max_dist_arcsec: float = 1.0,
    ) -> None:
        self.provider = provider
        self.output_topic = output_topic
        self.unassociated_topic = unassociated_topic
        self.limits = limits or EventLimits()
        self.task = SsSingleFrameAssociationTask(
            config=SsSingleFrameAssociationConfig(maxDistArcSeconds=max_dist_arcsec)
        )
        self._coverage_errors = coverage_error_types()

    def warm_up(self) -> None:
        """Run the task once on built-in synthetic data: the first real event then pays no
        one-off costs (astropy frame set-up, ~0.1 s), which would spoil its latency."""
        import numpy as np

        from .sample_events import sample_field

        field = sample_field(np.random.default_rng(0), n_sources=50, n_objects=5)
        self.task.run(field.exposure, field.sources, band="r", solarSystemObjectTable=field.objects)

    # -- stages ------------------------------------------------------------------------
    # The whole path works on plain numpy arrays (sources, predicted objects, ssSource
    # columns): a DataFrame per event costs more than the association itself.
    def _decode(self, message: InputMessage) -> tuple[dict[str, Any], dict[str, np.ndarray], Exposure]:
        size = 0 if message.value is None else len(message.value)
        if size > self.limits.max_event_bytes:
            raise RejectedEvent(
                "too_large", f"event of {size} bytes exceeds max_event_bytes={self.limits.max_event_bytes}"
            )
        version, event = wire.decode("visitEvent", message.value)
        n_rows = event["diaSources"].get("nRows", 0)
        if n_rows > self.limits.max_sources:
            raise RejectedEvent(
                "too_many_sources", f"event has {n_rows} sources, max_sources={self.limits.max_sources}"
            )
        sources = unpack_source_columns(event["diaSources"], version)
        for name in ("width", "height"):
            if event[name] <= 0:
                raise SchemaInvalidError(f"{name} must be positive, got {event[name]}")
        if n_rows:
            with np.errstate(invalid="ignore"):
                usable = np.isfinite(sources["ra"]) & (np.abs(sources["dec"]) <= 90.0)
            if not usable.any():  # before the store query: nothing could be associated
                raise RejectedEvent("no_valid_sources", f"none of the {n_rows} sources has finite ra/dec")
        exposure = exposure_from_event(event)
        return event, sources, exposure

    def _query(self, exposure: Exposure) -> Any:
        try:
            as_columns = getattr(self.provider, "query_exposure_columns", None)
            return as_columns(exposure) if as_columns is not None else self.provider.query_exposure(exposure)
        except self._coverage_errors:
            raise
        except (OSError, TimeoutError, MemoryError) as exc:
            raise TransientFault(f"ephemeris store unreadable: {exc!r}") from exc

    # -- the whole event ----------------------------------------------------------------
    def process(self, message: InputMessage) -> EventResult:
        t0 = time.perf_counter()
        event, sources, exposure = self._decode(message)
        t1 = time.perf_counter()
        objects = self._query(exposure)
        t2 = time.perf_counter()
        try:
            # Rows without finite coordinates are excluded and counted by the task itself.
            result = self.task.run(exposure, sources, band=event["band"], solarSystemObjectTable=objects)
        except DuplicateIdError as exc:
            if exc.column != "diaSourceId":
                raise  # the provider's fault, not the event's
            raise RejectedEvent("duplicate_ids", str(exc)) from exc
        t3 = time.perf_counter()
        encoded = encode_ss_sources(result.ssSourceColumns)
        visit, detector = int(event["visit"]), int(event["detector"])
        origin = f"{message.topic}/{message.partition}/{message.offset}".encode()
        headers: list[tuple[str, bytes | None]] = [
            ("ssassoc.visit", str(visit).encode()),
            ("ssassoc.detector", str(detector).encode()),
            ("ssassoc.input", origin),
        ]
        topic = self.output_topic
        outputs = [
            OutputMessage(topic=topic, key=str(dia_source_id).encode(), value=value, headers=headers)
            for dia_source_id, value in encoded
        ]
        n_unassociated = int(result.nTotalSsObjects - result.nAssociatedSsObjects)
        if self.unassociated_topic is not None:
            outputs.append(
                OutputMessage(
                    topic=self.unassociated_topic,
                    key=f"{visit}:{detector}".encode(),
                    value=wire.encode(
                        "unassociatedSsObjects", _unassociated_record(event, result.unassociatedSsObjectColumns())
                    ),
                    headers=headers,
                )
            )
        t4 = time.perf_counter()
        metadata = self.task.getFullMetadata().to_dict()
        n_sources = int(self.task.metadata["nSources"])
        n_bad = int(self.task.metadata["nBadSources"])
        counts = {
            "nSources": n_sources,
            "nBadSources": n_bad,
            "nPredicted": len(objects["ssObjectId"]),
            "nAssociated": len(encoded),
            "nUnassociated": n_unassociated,
        }
        timings = {
            "decodeMs": (t1 - t0) * 1e3,
            "ephemerisQueryMs": (t2 - t1) * 1e3,
            "associationMs": (t3 - t2) * 1e3,
            "encodeMs": (t4 - t3) * 1e3,
        }
        task_metadata = {
            key: value for key, value in metadata.items() if not key.endswith(("Utc", "CpuTime", "WallTime"))
        }
        return EventResult(
            outputs=outputs,
            visit=visit,
            detector=detector,
            band=str(event["band"]),
            counts=counts,
            timings_ms=timings,
            task_metadata=task_metadata,
        )


def _unassociated_record(event: dict[str, Any], objects: dict[str, Any]) -> dict[str, Any]:
    def nullable(values: Any, kind: type) -> list[Any]:
        return [
            None if v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v)) else kind(v)
            for v in np.asarray(values, dtype=object).tolist()
        ]

    return {
        "visit": int(event["visit"]),
        "detector": int(event["detector"]),
        "midpointMjdTai": float(event["midpointMjdTai"]),
        "ssObjectId": np.asarray(objects["ssObjectId"], dtype=np.int64).tolist(),
        "designation": nullable(objects["designation"], str),
        "ephRa": np.asarray(objects["ephRa"], dtype=np.float64).tolist(),
        "ephDec": np.asarray(objects["ephDec"], dtype=np.float64).tolist(),
        "ephVmag": nullable(objects["ephVmag"], float),
    }
