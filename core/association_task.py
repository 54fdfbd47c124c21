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
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
from astropy.table import Table
from pydantic import Field, field_validator

from .ephemeris.query_task import EphemerisQueryTask
from .exposure import Exposure
from .footprint import DetectorFootprint, padding_pixels
from .inputs import check_objects, check_sources
from .matching import candidate_pairs, match
from .sssource import derive_sssource_columns, empty_sssource_table, sssource_table
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


@dataclass
class SsSingleFrameAssociationResult:
    """What :meth:`SsSingleFrameAssociationTask.run` returns."""

    associatedSsSources: Table
    """One row per association, exactly the ssSource columns (units in column metadata)."""
    unassociatedSsObjects: pd.DataFrame
    """Objects predicted on the detector but not matched: their table rows plus pixel ``x``, ``y``."""
    ssoAssocDiaSources: pd.DataFrame
    """Matched source rows (caller's columns) with their ``ssObjectId``."""
    unAssocDiaSources: pd.DataFrame
    """Source rows left unmatched (including rows with non-finite coordinates)."""
    nTotalSsObjects: int
    """Objects predicted on the (padded) detector."""
    nAssociatedSsObjects: int


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
        sourceTable: pd.DataFrame,
        band: str | None = None,
        solarSystemObjectTable: pd.DataFrame | None = None,
    ) -> SsSingleFrameAssociationResult:
        """Associate ``sourceTable`` with the objects predicted on ``exposure``.

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
        if band is not None:
            for frame in (result.ssoAssocDiaSources, result.unAssocDiaSources):
                if "band" not in frame.columns:
                    frame["band"] = str(band)
        return result

    def associateSources(
        self, sourceTable: pd.DataFrame, solarSystemObjectTable: pd.DataFrame, exposure: Exposure
    ) -> Table:
        """The ssSource table of the associations (footprint cut included)."""
        result = self.associate(exposure, sourceTable, solarSystemObjectTable, withFrames=False)
        return result.associatedSsSources

    def associate(
        self,
        exposure: Exposure,
        sourceTable: pd.DataFrame,
        solarSystemObjectTable: pd.DataFrame,
        *,
        withFrames: bool = True,
    ) -> SsSingleFrameAssociationResult:
        """Footprint cut, one-to-one matching and derived columns; records counts and timings.

        With ``withFrames=False`` the four DataFrames of the result are left
        empty (for callers that only need the ssSource table).
        """
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
                    ss_sources = sssource_table(derive_sssource_columns(matched_sources, matched_objects, matches.rank))
                else:
                    ss_sources = empty_sssource_table()

            md["nAssociatedSsObjects"] = len(obj_rows)
            md["nUnassociatedSsObjects"] = len(on_idx) - len(obj_rows)

            if withFrames:
                matched_src_mask = np.zeros(len(sources.ids), dtype=bool)
                matched_src_mask[src_rows] = True
                assoc_sources = sources.table.iloc[src_rows].copy()
                assoc_sources["ssObjectId"] = objects.ids[obj_rows]
                unassoc_sources = sources.table.iloc[np.flatnonzero(~matched_src_mask)].copy()
                unmatched_obj = np.setdiff1d(on_idx, obj_rows)
                unassoc_objects = objects.table.iloc[unmatched_obj].copy()
                unassoc_objects["x"] = x_pix[unmatched_obj]
                unassoc_objects["y"] = y_pix[unmatched_obj]
            else:
                assoc_sources = unassoc_sources = unassoc_objects = pd.DataFrame()

        return SsSingleFrameAssociationResult(
            associatedSsSources=ss_sources,
            unassociatedSsObjects=unassoc_objects,
            ssoAssocDiaSources=assoc_sources,
            unAssocDiaSources=unassoc_sources,
            nTotalSsObjects=len(on_idx),
            nAssociatedSsObjects=len(obj_rows),
        )
