"""``SsSingleFrameAssociationTask``: known Solar System objects <-> sources of one detector image.

The job of Rubin's ``SsSingleFrameAssociationTask`` / ``SolarSystemAssociationTask``,
without their known defects: the footprint test is done sky side first (a
distorted WCS cannot fold a far-off position onto the chip), matching is a
globally optimal one-to-one assignment over all candidate pairs (Rubin's
closest-first k = 1 is ``matching="greedy"``), every ssSource column is
computed (real rates, wrapped offsets, true norms), and bad rows never crash.

The association itself is a pure function of (exposure, sources, predicted
objects, config): :meth:`SsSingleFrameAssociationTask.associate`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Literal

import numpy as np
import pandas as pd
from astropy.table import Table
from pydantic import Field, field_validator

from .ephemeris.query_task import EphemerisQueryTask
from .exposure import Exposure
from .footprint import DetectorFootprint, padding_pixels
from .inputs import CheckedObjects, CheckedSources, ColumnTable, as_dataframe, check_objects, check_sources
from .matching import candidate_pairs, match
from .sssource import derive_sssource_columns, empty_sssource_columns, sssource_table
from .task import ConfigurableField, Task, TaskConfig

__all__ = [
    "SsAssociationBatch",
    "SsSingleFrameAssociationConfig",
    "SsSingleFrameAssociationResult",
    "SsSingleFrameAssociationTask",
]


class SsSingleFrameAssociationConfig(TaskConfig):
    """Configuration of :class:`SsSingleFrameAssociationTask`."""

    maxDistArcSeconds: float = Field(default=1.0, gt=0.0, le=3600.0)
    """Largest separation between a predicted position and a source that can be a match (arcsec)."""

    maxPixelMargin: float = Field(default=100.0, ge=0.0)
    """Cap on the padding of the detector box by an object's ephemeris uncertainty (pixels)."""

    defaultEphemerisUncertaintyArcsec: float = Field(default=2.0, ge=0.0)
    """1-sigma predicted position error assumed where the object table gives none (arcsec)."""

    matching: Literal["optimal", "greedy"] = "optimal"
    """``optimal``: most matches, then least total distance, over all candidate pairs.
    ``greedy``: Rubin's behaviour (each object's nearest source only, closest first)."""

    ephemerisQuery: ConfigurableField[Any] = Field(
        default_factory=lambda: EphemerisQueryTask.makeField(
            "Looks up predicted objects when run() is given no solarSystemObjectTable"
        )
    )
    """Subtask that predicts the objects on the detector (the cached ephemeris store)."""

    @field_validator("ephemerisQuery")
    @classmethod
    def _is_field(cls, value: Any) -> Any:
        if not isinstance(value, ConfigurableField):
            raise TypeError("ephemerisQuery must be a ConfigurableField (use .retarget())")
        return value


class SsSingleFrameAssociationResult:
    """What :meth:`SsSingleFrameAssociationTask.run` returns.

    The association is computed eagerly; the tables are built when first read
    (an astropy Table of 40 columns costs more than associating a detector of
    500 sources), so a streaming caller that only needs :attr:`ssSourceColumns`
    and the counts pays for neither.
    """

    def __init__(
        self,
        *,
        ss_source_columns: Mapping[str, np.ndarray],
        sources: pd.DataFrame | Mapping[str, np.ndarray],
        source_rows: np.ndarray,
        objects: pd.DataFrame | Mapping[str, np.ndarray],
        object_columns: Mapping[str, Any],
        object_rows: np.ndarray,
        object_ids: np.ndarray,
        on_detector_rows: np.ndarray,
        x_pix: np.ndarray,
        y_pix: np.ndarray,
    ) -> None:
        self.ssSourceColumns = ss_source_columns
        """The ssSource columns as numpy arrays, in schema order (one row per association)."""
        self._sources = sources
        self._source_rows = source_rows
        self._objects = objects
        self._object_columns = object_columns
        self._object_rows = object_rows
        self._object_ids = object_ids
        self._on_detector_rows = on_detector_rows
        self._x_pix = x_pix
        self._y_pix = y_pix
        self.nTotalSsObjects = len(on_detector_rows)
        """Objects predicted on the (padded) detector."""
        self.nAssociatedSsObjects = len(object_rows)
        self.band: str | None = None
        """Band of the exposure; added as a ``band`` column to the source frames that lack one."""
        self.metadata: dict[str, int] = {}
        """This image's counts (nSources, nBadSources, nTotalSsObjects, nAssociatedSsObjects, ...)."""

    @cached_property
    def associatedSsSources(self) -> Table:
        """One row per association, exactly the ssSource columns (units in column metadata)."""
        return sssource_table(self.ssSourceColumns)

    @cached_property
    def ssoAssocDiaSources(self) -> pd.DataFrame:
        """Matched source rows (caller's columns) with their ``ssObjectId``."""
        frame = as_dataframe(self._sources).iloc[self._source_rows].copy()
        frame["ssObjectId"] = self._object_ids[self._object_rows]
        return self._with_band(frame)

    @cached_property
    def unAssocDiaSources(self) -> pd.DataFrame:
        """Source rows left unmatched (including rows with non-finite coordinates)."""
        frame = as_dataframe(self._sources)
        matched = np.zeros(len(frame), dtype=bool)
        matched[self._source_rows] = True
        return self._with_band(frame.iloc[np.flatnonzero(~matched)].copy())

    def _with_band(self, frame: pd.DataFrame) -> pd.DataFrame:
        if self.band is not None and "band" not in frame.columns:
            frame["band"] = self.band
        return frame

    @cached_property
    def _unassociated_rows(self) -> np.ndarray:
        return np.setdiff1d(self._on_detector_rows, self._object_rows)

    def unassociatedSsObjectColumns(
        self, names: tuple[str, ...] = ("ssObjectId", "designation", "ephRa", "ephDec", "ephVmag")
    ) -> dict[str, Any]:
        """Columns ``names`` of the objects predicted on the detector but not matched, plus
        pixel ``x``, ``y`` (the array form of :attr:`unassociatedSsObjects`, for streaming)."""
        rows = self._unassociated_rows
        out = {name: self._object_columns[name][rows] for name in names}
        out["x"], out["y"] = self._x_pix[rows], self._y_pix[rows]
        return out

    @cached_property
    def unassociatedSsObjects(self) -> pd.DataFrame:
        """Objects predicted on the detector but not matched: their table rows plus pixel ``x``, ``y``."""
        rows = self._unassociated_rows
        frame = as_dataframe(self._objects).iloc[rows].copy()
        frame["x"] = self._x_pix[rows]
        frame["y"] = self._y_pix[rows]
        return frame


_COUNT_KEYS = (
    "nSources", "nBadSources", "nInputSsObjects", "nBadSsObjects", "nTotalSsObjects", "nCandidatePairs",
    "nAssociatedSsObjects", "nUnassociatedSsObjects",
)  # fmt: skip


@dataclass
class _Event:
    """One image after input checks and the footprint cut."""

    sources: CheckedSources
    objects: CheckedObjects
    on_idx: np.ndarray
    """Rows of the object table on the (padded) detector."""
    good_sources: np.ndarray
    """Rows of the source table with usable coordinates."""
    x_pix: np.ndarray
    y_pix: np.ndarray
    counts: dict[str, int]


@dataclass
class SsAssociationBatch:
    """What :meth:`SsSingleFrameAssociationTask.run_batch` returns."""

    ssSourceColumns: dict[str, np.ndarray]
    """The ssSource columns of every association of the batch, image after image."""
    row_bounds: np.ndarray
    """Rows ``row_bounds[k]:row_bounds[k + 1]`` of :attr:`ssSourceColumns` belong to the k-th
    image that was associated (images with bad input have none)."""
    results: list[SsSingleFrameAssociationResult | Exception]
    """Per input item, in order: its result, or the exception its input raised."""


class _RowSlice(Mapping[str, np.ndarray]):
    """Rows ``lo:hi`` of every column, sliced when a column is read (views, no copies)."""

    def __init__(self, columns: Mapping[str, np.ndarray], lo: int, hi: int) -> None:
        self._columns, self._lo, self._hi = columns, lo, hi

    def __getitem__(self, name: str) -> np.ndarray:
        return self._columns[name][self._lo : self._hi]

    def __iter__(self) -> Iterator[str]:
        return iter(self._columns)

    def __len__(self) -> int:
        return len(self._columns)


def _concat(parts: list[Any]) -> Any:
    return parts[0] if len(parts) == 1 else np.concatenate(parts)


def _gather(events: list[_Event], column: Callable[[_Event], Any], rows: str | None) -> Any:
    """``column`` of each event at its rows ``rows`` (an attribute; None = all), concatenated."""
    parts = []
    for e in events:
        values = column(e)
        if rows is not None:
            index = getattr(e, rows)
            if len(index) != len(values):  # all rows kept (the usual case for sources): no copy
                values = values[index]
        parts.append(values)
    return _concat(parts)


class SsSingleFrameAssociationTask(Task):
    """Associate the sources of one detector image with the Solar System objects predicted on it."""

    ConfigClass = SsSingleFrameAssociationConfig
    _DefaultName = "ssSingleFrameAssociation"
    config: SsSingleFrameAssociationConfig

    def __init__(self, config: SsSingleFrameAssociationConfig | None = None, **kwargs: Any) -> None:
        super().__init__(config=config, **kwargs)
        self.makeSubtask("ephemerisQuery")
        self.ephemerisQuery: EphemerisQueryTask

    def run(
        self,
        exposure: Exposure,
        sourceTable: ColumnTable,
        band: str | None = None,
        solarSystemObjectTable: ColumnTable | None = None,
    ) -> SsSingleFrameAssociationResult:
        """Associate ``sourceTable`` with the objects predicted on ``exposure``.

        Either table may be a DataFrame or a mapping of column name to 1-D array.
        With ``solarSystemObjectTable=None`` the ``ephemerisQuery`` subtask
        predicts them. Metadata of the task tree is reset at the start of each
        run, so after it :meth:`getFullMetadata` describes this run only.
        """
        self.emptyMetadata()
        if band is not None:
            self.metadata["band"] = str(band)
        with self.timer("run"):
            if solarSystemObjectTable is None:
                with self.timer("ephemerisQuery"):
                    solarSystemObjectTable = self.ephemerisQuery.run(exposure)
            result = self.associate(exposure, sourceTable, solarSystemObjectTable)
        result.band = None if band is None else str(band)
        return result

    def associateSources(
        self, sourceTable: ColumnTable, solarSystemObjectTable: ColumnTable, exposure: Exposure
    ) -> Table:
        """The ssSource table of the associations (footprint cut included)."""
        return self.associate(exposure, sourceTable, solarSystemObjectTable).associatedSsSources

    def associate(
        self,
        exposure: Exposure,
        sourceTable: ColumnTable,
        solarSystemObjectTable: ColumnTable,
    ) -> SsSingleFrameAssociationResult:
        """Footprint cut, one-to-one matching and derived columns; records counts and timings."""
        md = self.metadata
        with self.timer("associate", logLevel=logging.DEBUG):
            with self.timer("footprint"):
                event = self._prepare(exposure, sourceTable, solarSystemObjectTable)
            result = self._match_and_derive([event])[2][0]
            for key, value in result.metadata.items():
                md[key] = value
        return result

    def run_batch(
        self,
        items: Sequence[tuple[Exposure, ColumnTable, ColumnTable]],
        band: str | None = None,
    ) -> SsAssociationBatch:
        """Associate several detector images at once: ``(exposure, sourceTable,
        solarSystemObjectTable)`` each; results equal to :meth:`run` on each (tested).

        For streams: candidate search, matching and derived columns run once over
        all images (one numpy call per step instead of one per image), so the fixed
        cost per image shrinks with the batch. An image whose input is bad gets its
        exception in :attr:`SsAssociationBatch.results` and the others go on. The task
        metadata describes the batch (counts summed, one set of timers, ``nEvents``);
        each result's :attr:`~SsSingleFrameAssociationResult.metadata` has its counts.
        """
        self.emptyMetadata()
        md = self.metadata
        if band is not None:
            md["band"] = str(band)
        prepared: list[_Event] = []
        positions: list[int] = []
        outcomes: list[SsSingleFrameAssociationResult | Exception | None] = [None] * len(items)
        with self.timer("run"):
            with self.timer("footprint"):
                for i, (exposure, sources, objects) in enumerate(items):
                    try:
                        prepared.append(self._prepare(exposure, sources, objects))
                        positions.append(i)
                    except (ValueError, TypeError, RuntimeError, KeyError) as exc:  # bad input: this item only
                        outcomes[i] = exc
            columns, bounds, results = self._match_and_derive(prepared)
        for i, result in zip(positions, results, strict=True):
            result.band = None if band is None else str(band)
            outcomes[i] = result
        md["nEvents"] = len(items)
        md["nFailedEvents"] = len(items) - len(prepared)
        for key in _COUNT_KEYS:
            md[key] = sum(r.metadata[key] for r in results)
        return SsAssociationBatch(columns, bounds, [r for r in outcomes if r is not None])

    def _prepare(self, exposure: Exposure, sourceTable: ColumnTable, objectTable: ColumnTable) -> _Event:
        """Input checks and the footprint cut of one image."""
        if not isinstance(exposure, Exposure):
            raise TypeError(f"exposure must be an ssassoc.core.Exposure, got {type(exposure).__name__}")
        cfg = self.config
        sources = check_sources(sourceTable)
        objects = check_objects(objectTable)
        obj_cols = objects.columns
        n_obj = len(objects.ids)
        uncertainty = obj_cols["ephUncertainty"]
        uncertainty = np.where(np.isfinite(uncertainty), uncertainty, cfg.defaultEphemerisUncertaintyArcsec)
        pad = padding_pixels(uncertainty, exposure.pixel_scale_arcsec, cfg.maxPixelMargin)
        on_chip = np.zeros(n_obj, dtype=bool)
        x_pix = np.full(n_obj, np.nan)
        y_pix = np.full(n_obj, np.nan)
        good_obj = np.flatnonzero(objects.good)
        if len(good_obj):
            footprint = DetectorFootprint(exposure, float(pad[good_obj].max()))
            mask, xs, ys = footprint.contains(obj_cols["ephRa"][good_obj], obj_cols["ephDec"][good_obj], pad[good_obj])
            on_chip[good_obj] = mask
            x_pix[good_obj], y_pix[good_obj] = xs, ys
        on_idx = np.flatnonzero(on_chip)
        counts = {
            "nSources": len(sources.ids),
            "nBadSources": int(len(sources.good) - np.count_nonzero(sources.good)),
            "nInputSsObjects": n_obj,
            "nBadSsObjects": int(n_obj - len(good_obj)),
            "nTotalSsObjects": len(on_idx),
        }
        return _Event(sources, objects, on_idx, np.flatnonzero(sources.good), x_pix, y_pix, counts)

    def _match_and_derive(
        self, events: list[_Event]
    ) -> tuple[dict[str, np.ndarray], np.ndarray, list[SsSingleFrameAssociationResult]]:
        """Candidate pairs, matching and derived columns of all ``events`` at once."""
        cfg = self.config
        n_events = len(events)
        if not n_events:
            return empty_sssource_columns(), np.zeros(1, dtype=np.int64), []
        with self.timer("matching"):
            n_on = np.array([len(e.on_idx) for e in events], dtype=np.int64)
            n_good = np.array([len(e.good_sources) for e in events], dtype=np.int64)
            obj_event = np.repeat(np.arange(n_events), n_on)
            src_event = np.repeat(np.arange(n_events), n_good)
            obj_ra = _gather(events, lambda e: e.objects.columns["ephRa"], "on_idx")
            obj_dec = _gather(events, lambda e: e.objects.columns["ephDec"], "on_idx")
            obj_ids = _gather(events, lambda e: e.objects.ids, "on_idx")
            src_ra = _gather(events, lambda e: e.sources.ra_deg, "good_sources")
            src_dec = _gather(events, lambda e: e.sources.dec_deg, "good_sources")
            src_ids = _gather(events, lambda e: e.sources.ids, "good_sources")
            obj_group = obj_event if n_events > 1 else None
            src_group = src_event if n_events > 1 else None
            pairs = candidate_pairs(
                obj_ra, obj_dec, src_ra, src_dec, cfg.maxDistArcSeconds, obj_ids, src_ids, obj_group, src_group
            )
            matches = match(pairs, cfg.matching, obj_ids, src_ids, obj_group)
        with self.timer("derivedColumns"):
            if len(matches.obj):
                obj_offsets = np.concatenate(([0], np.cumsum([len(e.objects.ids) for e in events])))
                obj_event_rows = _gather(events, lambda e: e.on_idx, None)[matches.obj]
                obj_global_rows = obj_offsets[obj_event[matches.obj]] + obj_event_rows
                matched_objects = {
                    name: _concat([e.objects.columns[name] for e in events])[obj_global_rows]
                    for name in events[0].objects.columns
                }
                matched_sources = {"diaSourceId": src_ids[matches.src], "ra": src_ra[matches.src],
                                   "dec": src_dec[matches.src]}  # fmt: skip
                columns = derive_sssource_columns(matched_sources, matched_objects, matches.rank)
            else:  # most detectors: nothing to derive
                columns = empty_sssource_columns()
        # Matches come ordered by object key, so each image's rows are one contiguous run.
        match_event = obj_event[matches.obj]
        bounds = np.searchsorted(match_event, np.arange(n_events + 1))
        pairs_per_event = np.bincount(obj_event[pairs.obj], minlength=n_events)
        on_starts = np.concatenate(([0], np.cumsum(n_on)))
        good_starts = np.concatenate(([0], np.cumsum(n_good)))
        results = []
        for i, event in enumerate(events):
            lo, hi = int(bounds[i]), int(bounds[i + 1])
            obj_rows = event.on_idx[matches.obj[lo:hi] - on_starts[i]]
            src_rows = event.good_sources[matches.src[lo:hi] - good_starts[i]]
            metadata = dict(event.counts)
            metadata["nCandidatePairs"] = int(pairs_per_event[i])
            metadata["nAssociatedSsObjects"] = hi - lo
            metadata["nUnassociatedSsObjects"] = len(event.on_idx) - (hi - lo)
            result = SsSingleFrameAssociationResult(
                ss_source_columns=columns if n_events == 1 else _RowSlice(columns, lo, hi),
                sources=event.sources.table,
                source_rows=src_rows,
                objects=event.objects.table,
                object_columns=event.objects.columns,
                object_rows=obj_rows,
                object_ids=event.objects.ids,
                on_detector_rows=event.on_idx,
                x_pix=event.x_pix,
                y_pix=event.y_pix,
            )
            result.metadata = metadata
            results.append(result)
        return columns, bounds, results
