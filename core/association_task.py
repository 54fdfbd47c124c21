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
from collections.abc import Mapping
from functools import cached_property
from typing import Any, Literal

import numpy as np
import pandas as pd
from astropy.table import Table
from pydantic import Field, field_validator

from .ephemeris.query_task import EphemerisQueryTask
from .exposure import Exposure
from .footprint import DetectorFootprint, padding_pixels
from .inputs import ColumnTable, as_dataframe, check_objects, check_sources
from .matching import candidate_pairs, match
from .sssource import derive_sssource_columns, empty_sssource_columns, sssource_table
from .task import ConfigurableField, Task, TaskConfig

__all__ = [
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
        ss_source_columns: dict[str, np.ndarray],
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
        if not isinstance(exposure, Exposure):
            raise TypeError(f"exposure must be an ssassoc.core.Exposure, got {type(exposure).__name__}")
        cfg = self.config
        md = self.metadata
        with self.timer("associate", logLevel=logging.DEBUG):
            sources = check_sources(sourceTable)
            objects = check_objects(solarSystemObjectTable)
            md["nSources"] = len(sources.ids)
            md["nBadSources"] = int(np.count_nonzero(~sources.good))
            md["nInputSsObjects"] = len(objects.ids)
            md["nBadSsObjects"] = int(np.count_nonzero(~objects.good))

            with self.timer("footprint"):
                obj_cols = objects.columns
                n_obj = len(objects.ids)
                eph_ra, eph_dec = obj_cols["ephRa"], obj_cols["ephDec"]
                uncertainty = obj_cols["ephUncertainty"]
                uncertainty = np.where(np.isfinite(uncertainty), uncertainty, cfg.defaultEphemerisUncertaintyArcsec)
                pad = padding_pixels(uncertainty, exposure.pixel_scale_arcsec, cfg.maxPixelMargin)
                on_chip = np.zeros(n_obj, dtype=bool)
                x_pix = np.full(n_obj, np.nan)
                y_pix = np.full(n_obj, np.nan)
                good_obj = np.flatnonzero(objects.good)
                if len(good_obj):
                    footprint = DetectorFootprint(exposure, float(pad[good_obj].max()))
                    mask, xs, ys = footprint.contains(eph_ra[good_obj], eph_dec[good_obj], pad[good_obj])
                    on_chip[good_obj] = mask
                    x_pix[good_obj], y_pix[good_obj] = xs, ys
            on_idx = np.flatnonzero(on_chip)
            md["nTotalSsObjects"] = len(on_idx)

            with self.timer("matching"):
                good_src = np.flatnonzero(sources.good)
                obj_ids = objects.ids[on_idx]
                src_ids = sources.ids[good_src]
                pairs = candidate_pairs(
                    eph_ra[on_idx],
                    eph_dec[on_idx],
                    sources.ra_deg[good_src],
                    sources.dec_deg[good_src],
                    cfg.maxDistArcSeconds,
                    obj_ids,
                    src_ids,
                )
                matches = match(pairs, cfg.matching, obj_ids, src_ids)
                obj_rows = on_idx[matches.obj]  # rows of the object table
                src_rows = good_src[matches.src]  # rows of the source table
            md["nCandidatePairs"] = len(pairs.obj)

            with self.timer("derivedColumns"):
                if len(obj_rows):
                    matched_objects = {c: v[obj_rows] for c, v in obj_cols.items()}
                    matched_sources = {
                        "diaSourceId": sources.ids[src_rows],
                        "ra": sources.ra_deg[src_rows],
                        "dec": sources.dec_deg[src_rows],
                    }
                    columns = derive_sssource_columns(matched_sources, matched_objects, matches.rank)
                else:  # most detectors: nothing to derive
                    columns = empty_sssource_columns()

            md["nAssociatedSsObjects"] = len(obj_rows)
            md["nUnassociatedSsObjects"] = len(on_idx) - len(obj_rows)

        return SsSingleFrameAssociationResult(
            ss_source_columns=columns,
            sources=sources.table,
            source_rows=src_rows,
            objects=objects.table,
            object_columns=objects.columns,
            object_rows=obj_rows,
            object_ids=objects.ids,
            on_detector_rows=on_idx,
            x_pix=x_pix,
            y_pix=y_pix,
        )
