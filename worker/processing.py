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

from . import wire
from .deadletter import InputMessage, OutputMessage, RejectedEvent
from .ephemeris import EphemerisProvider, coverage_error_types
from .events import SchemaInvalidError, exposure_from_event, unpack_sources
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
            items = [None if (v is None or (isinstance(v, float) and math.isnan(v))) else str(v)
                     for v in values.tolist()]
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
    def _decode(self, message: InputMessage) -> tuple[dict[str, Any], pd.DataFrame, Exposure]:
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
        sources = unpack_sources(event["diaSources"], version)
        for name in ("width", "height"):
            if event[name] <= 0:
                raise SchemaInvalidError(f"{name} must be positive, got {event[name]}")
        exposure = exposure_from_event(event)
        return event, sources, exposure

    @staticmethod
    def _clean_sources(sources: pd.DataFrame) -> tuple[pd.DataFrame, int]:
        """Drop rows without finite coordinates; reject duplicate ids and NaN-only tables."""
        ids = sources["diaSourceId"].to_numpy()
        if len(np.unique(ids)) != len(ids):
            unique, counts = np.unique(ids, return_counts=True)
            dupes = unique[counts > 1][:5].tolist()
            raise RejectedEvent("duplicate_ids", f"diaSourceId not unique, e.g. {dupes}")
        ra = sources["ra"].to_numpy()
        dec = sources["dec"].to_numpy()
        good = np.isfinite(ra) & np.isfinite(dec) & (np.abs(dec) <= 90.0)
        n_bad = int(len(good) - good.sum())
        if len(good) and not good.any():
            raise RejectedEvent(
                "no_valid_sources", f"none of the {len(good)} sources has finite ra/dec"
            )
        if n_bad:
            sources = sources.loc[good].reset_index(drop=True)
        return sources, n_bad

    def _query(self, exposure: Exposure) -> pd.DataFrame:
        try:
            return self.provider.query_exposure(exposure)
        except self._coverage_errors:
            raise
        except (OSError, TimeoutError, MemoryError) as exc:
            raise TransientFault(f"ephemeris store unreadable: {exc!r}") from exc

    # -- the whole event ----------------------------------------------------------------
    def process(self, message: InputMessage) -> EventResult:
        t0 = time.perf_counter()
        event, sources, exposure = self._decode(message)
        sources, n_bad = self._clean_sources(sources)
        t1 = time.perf_counter()
        objects = self._query(exposure)
        t2 = time.perf_counter()
        self.task.emptyMetadata()
        result = self.task.run(
            exposure, sources, band=event["band"], solarSystemObjectTable=objects
        )
        t3 = time.perf_counter()
        # The core's plain column arrays: building its astropy Table would cost more than associating.
        columns = getattr(result, "ssSourceColumns", None)
        if columns is None:
            columns = result.associatedSsSources
        encoded = encode_ss_sources(columns)
        visit, detector = int(event["visit"]), int(event["detector"])
        origin = f"{message.topic}/{message.partition}/{message.offset}".encode()
        headers: list[tuple[str, bytes | None]] = [
            ("ssassoc.visit", str(visit).encode()),
            ("ssassoc.detector", str(detector).encode()),
            ("ssassoc.input", origin),
        ]
        outputs = [
            OutputMessage(topic=self.output_topic, key=str(dia_source_id).encode(), value=value,
                          headers=headers)
            for dia_source_id, value in encoded
        ]
        n_unassociated = int(result.nTotalSsObjects - result.nAssociatedSsObjects)
        if self.unassociated_topic is not None:
            unassociated = result.unassociatedSsObjects
            outputs.append(
                OutputMessage(
                    topic=self.unassociated_topic,
                    key=f"{visit}:{detector}".encode(),
                    value=wire.encode(
                        "unassociatedSsObjects", _unassociated_record(event, unassociated)
                    ),
                    headers=headers,
                )
            )
        t4 = time.perf_counter()
        counts = {
            "nSources": int(len(sources) + n_bad),
            "nBadSources": n_bad,
            "nPredicted": len(objects),
            "nAssociated": len(encoded),
            "nUnassociated": n_unassociated,
        }
        timings = {
            "decodeMs": (t1 - t0) * 1e3,
            "ephemerisQueryMs": (t2 - t1) * 1e3,
            "associationMs": (t3 - t2) * 1e3,
            "encodeMs": (t4 - t3) * 1e3,
        }
        metadata = {
            key: value
            for key, value in self.task.getFullMetadata().to_dict().items()
            if not key.endswith(("Utc", "CpuTime", "WallTime"))
        }
        return EventResult(
            outputs=outputs,
            visit=visit,
            detector=detector,
            band=str(event["band"]),
            counts=counts,
            timings_ms=timings,
            task_metadata=metadata,
        )


def _unassociated_record(event: dict[str, Any], objects: pd.DataFrame) -> dict[str, Any]:
    def optional(name: str, kind: type) -> list[Any]:
        if name not in objects.columns:
            return [None] * len(objects)
        values = objects[name].tolist()
        return [
            None if v is None or (isinstance(v, float) and math.isnan(v)) else kind(v) for v in values
        ]

    return {
        "visit": int(event["visit"]),
        "detector": int(event["detector"]),
        "midpointMjdTai": float(event["midpointMjdTai"]),
        "ssObjectId": [int(v) for v in objects["ssObjectId"].tolist()] if len(objects) else [],
        "designation": optional("designation", str),
        "ephRa": [float(v) for v in objects["ephRa"].tolist()] if len(objects) else [],
        "ephDec": [float(v) for v in objects["ephDec"].tolist()] if len(objects) else [],
        "ephVmag": optional("ephVmag", float),
    }
