"""One visit event in, its output messages out: no Kafka, no logging set-up.

:class:`EventProcessor.process` decodes the event, builds the exposure and the
source table, asks the ephemeris provider for predicted objects, runs the
association task and frames one ssSource record per association (key =
``diaSourceId``). Bad input raises :class:`RejectedEvent` (or an exception
:func:`ssassoc.worker.deadletter.classify` maps to a dead-letter class);
faults worth retrying raise :class:`TransientFault`.
"""

from __future__ import annotations

import gc
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
        one-off costs (astropy frame set-up, ~0.1 s), which would spoil its latency.
        Call it once, after everything long-lived is loaded."""
        import numpy as np

        from .sample_events import sample_field

        field = sample_field(np.random.default_rng(0), n_sources=50, n_objects=5)
        self.task.run(field.exposure, field.sources, band="r", solarSystemObjectTable=field.objects)
        self.task.run_batch([(field.exposure, field.sources, field.objects)] * 2)
        # Everything alive now (modules, schemas, the store's index...) lives as long as the
        # process: take it out of the garbage collector's sight, so the full collections
        # that event allocations trigger scan only what events allocate (~5-10 % per event).
        gc.collect()
        gc.freeze()

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
            error = _event_error(exc)
            if error is exc:
                raise
            raise error from exc
        t3 = time.perf_counter()
        outputs = self._outputs(message, event, result, encode_ss_sources(result.ssSourceColumns))
        t4 = time.perf_counter()
        timings = {
            "decodeMs": (t1 - t0) * 1e3,
            "ephemerisQueryMs": (t2 - t1) * 1e3,
            "associationMs": (t3 - t2) * 1e3,
            "encodeMs": (t4 - t3) * 1e3,
        }
        return self._event_result(event, result, outputs, timings, 1)

    def _outputs(
        self, message: InputMessage, event: dict[str, Any], result: Any, encoded: list[tuple[int, bytes]]
    ) -> list[OutputMessage]:
        """One ssSource message per association (key = diaSourceId), and the unassociated
        objects' message when that topic is configured."""
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
        if self.unassociated_topic is not None:
            record = _unassociated_record(event, result.unassociatedSsObjectColumns())
            outputs.append(
                OutputMessage(
                    topic=self.unassociated_topic,
                    key=f"{visit}:{detector}".encode(),
                    value=wire.encode("unassociatedSsObjects", record),
                    headers=headers,
                )
            )
        return outputs

    def _event_result(
        self,
        event: dict[str, Any],
        result: Any,
        outputs: list[OutputMessage],
        timings: dict[str, float],
        batch_size: int,
    ) -> EventResult:
        md = result.metadata
        counts = {
            "nSources": int(md["nSources"]),
            "nBadSources": int(md["nBadSources"]),
            "nPredicted": int(md["nInputSsObjects"]),
            "nAssociated": int(md["nAssociatedSsObjects"]),
            "nUnassociated": int(md["nUnassociatedSsObjects"]),
        }
        name = self.task.getFullName()
        task_metadata: dict[str, Any] = {f"{name}.{key}": value for key, value in md.items()}
        task_metadata[f"{name}.batchSize"] = batch_size
        return EventResult(
            outputs=outputs,
            visit=int(event["visit"]),
            detector=int(event["detector"]),
            band=str(event["band"]),
            counts=counts,
            timings_ms=timings,
            task_metadata=task_metadata,
        )

    # -- several events at once ------------------------------------------------------------
    def process_batch(self, messages: list[InputMessage]) -> list[EventResult | Exception]:
        """:meth:`process` for each message, with the association and the encoding done once
        for all of them (:meth:`SsSingleFrameAssociationTask.run_batch`): per event the
        outputs and counts are those :meth:`process` gives (tested); the association and
        encode timings of each are its share of the batch's (``batchSize`` events).

        A message that fails gets its exception in its place, never raised: the caller
        runs it again alone through :meth:`process` (which raises, so retries and dead
        letters work as for any event), and the others are unaffected.
        """
        outcomes: list[EventResult | Exception | None] = [None] * len(messages)
        staged: list[tuple[int, InputMessage, dict[str, Any], Exposure, dict[str, float]]] = []
        items: list[tuple[Exposure, Any, Any]] = []
        for i, message in enumerate(messages):
            try:
                t0 = time.perf_counter()
                event, sources, exposure = self._decode(message)
                t1 = time.perf_counter()
                objects = self._query(exposure)
                t2 = time.perf_counter()
            except Exception as exc:
                outcomes[i] = exc
                continue
            timings = {"decodeMs": (t1 - t0) * 1e3, "ephemerisQueryMs": (t2 - t1) * 1e3}
            staged.append((i, message, event, exposure, timings))
            items.append((exposure, sources, objects))
        t3 = time.perf_counter()
        batch = self.task.run_batch(items)
        t4 = time.perf_counter()
        encoded = encode_ss_sources(batch.ssSourceColumns)
        n_staged = max(len(staged), 1)
        association_ms = (t4 - t3) * 1e3 / n_staged
        k = 0  # index among the successfully associated events (rows of the batch)
        for (i, message, event, _exposure, timings), result in zip(staged, batch.results, strict=True):
            if isinstance(result, Exception):
                outcomes[i] = _event_error(result)
                continue
            lo, hi = int(batch.row_bounds[k]), int(batch.row_bounds[k + 1])
            k += 1
            outputs = self._outputs(message, event, result, encoded[lo:hi])
            timings["associationMs"] = association_ms
            outcomes[i] = self._event_result(event, result, outputs, timings, len(messages))
        encode_share_ms = (time.perf_counter() - t4) * 1e3 / n_staged  # encoding + framing outputs
        for outcome in outcomes:
            if isinstance(outcome, EventResult):
                outcome.timings_ms["encodeMs"] = encode_share_ms
        return [o if o is not None else RuntimeError("not processed") for o in outcomes]


def _event_error(exc: Exception) -> Exception:
    """Duplicate source ids are the event's fault (a dead-letter class of their own);
    duplicate object ids are the provider's."""
    if isinstance(exc, DuplicateIdError) and exc.column == "diaSourceId":
        return RejectedEvent("duplicate_ids", str(exc))
    return exc


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
