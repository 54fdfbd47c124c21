"""Synthetic visit events for the demo, the tests and the benchmarks.

Each event is one detector of its own visit, pointed at its own patch of sky
(so objects of one event never fall on another): predicted objects with
geometrically consistent states (topocentric vector along the predicted
direction, heliocentric = observer + topocentric), their detections with
0.1" astrometric noise (90 % detected, some objects just off the chip) and
unrelated sources. The union of the predicted objects is a fixed object table
(:class:`TableEphemerisProvider`), and the true (ssObjectId, diaSourceId)
pairs are known. Everything is seeded.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ssassoc.core import Exposure
from ssassoc.core.sample_data import synthetic_field

from . import wire
from .ephemeris import TableEphemerisProvider
from .events import make_visit_event

__all__ = ["SampleEvent", "SampleField", "SampleStream", "sample_field", "sample_stream"]



@dataclass(frozen=True)
class SampleField:
    exposure: Exposure
    sources: pd.DataFrame
    objects: pd.DataFrame
    truth: frozenset[tuple[int, int]]


def sample_field(
    rng: np.random.Generator,
    *,
    n_sources: int = 500,
    n_objects: int = 20,
    ra_deg: float = 186.0,
    dec_deg: float = 7.0,
    visit: int = 1,
    detector: int = 42,
    midpoint_mjd_tai: float = 60800.1,
    width: int = 4072,
    height: int = 4000,
    first_object_id: int = 10**15,
    first_source_id: int = 10**12,
) -> SampleField:
    """One detector image (:func:`ssassoc.core.sample_data.synthetic_field`) with consecutive
    ids, plus the ``snr``, ``x``, ``y`` columns a real DiaSource table carries."""
    field = synthetic_field(
        rng=rng, n_sources=n_sources, n_objects=n_objects, ra_deg=ra_deg, dec_deg=dec_deg, width=width,
        height=height, midpoint_mjd_tai=midpoint_mjd_tai, visit=visit, detector=detector,
        first_object_id=first_object_id, first_source_id=first_source_id,
    )  # fmt: skip
    sources = field.sources.drop(columns=["midpointMjdTai"])
    sources["snr"] = rng.uniform(5, 100, len(sources))
    sources["x"], sources["y"] = field.exposure.sky_to_pixel(sources["ra"].to_numpy(), sources["dec"].to_numpy())
    detected = field.truth[field.truth["diaSourceId"] >= 0]
    truth = frozenset(
        zip(detected["ssObjectId"].astype(int).tolist(), detected["diaSourceId"].astype(int).tolist(), strict=True)
    )
    return SampleField(field.exposure, sources, field.objects, truth)


@dataclass(frozen=True)
class SampleEvent:
    key: bytes
    value: bytes
    visit: int
    detector: int
    truth: frozenset[tuple[int, int]]
    """(ssObjectId, diaSourceId) of the objects detected on this event."""


@dataclass(frozen=True)
class SampleStream:
    events: list[SampleEvent]
    objects: pd.DataFrame
    start_mjd_tai: float
    end_mjd_tai: float

    def provider(self) -> TableEphemerisProvider:
        return TableEphemerisProvider(self.objects, self.start_mjd_tai, self.end_mjd_tai)

    @property
    def expected(self) -> set[tuple[int, int]]:
        return set().union(*(e.truth for e in self.events)) if self.events else set()


def sample_stream(
    n_events: int,
    *,
    n_sources: int = 500,
    n_objects: int = 20,
    seed: int = 0,
    first_visit: int = 1000,
    midpoint_mjd_tai: float = 60800.1,
) -> SampleStream:
    """``n_events`` framed visit events, their object table and the true associations."""
    rng = np.random.default_rng(seed)
    events: list[SampleEvent] = []
    tables: list[pd.DataFrame] = []
    for i in range(n_events):
        visit = first_visit + i
        # Distinct pointings 2 deg apart in RA along dec 7: detectors never overlap.
        field = sample_field(
            rng, n_sources=n_sources, n_objects=n_objects, visit=visit, detector=i % 189,
            ra_deg=(10.0 + 2.0 * i) % 360.0, dec_deg=7.0 + 2.0 * (i // 170),
            midpoint_mjd_tai=midpoint_mjd_tai, first_object_id=10**15 + i * n_objects,
            first_source_id=10**12 + i * n_sources,
        )  # fmt: skip
        exposure = field.exposure
        record = make_visit_event(
            visit=visit, detector=exposure.detector, band="r",
            midpoint_mjd_tai=exposure.midpointMjdTai, exposure_time_s=30.0, wcs=exposure.wcs,
            width=exposure.width, height=exposure.height, sources=field.sources,
        )  # fmt: skip
        events.append(
            SampleEvent(
                key=f"{visit}:{exposure.detector}".encode(),
                value=wire.encode("visitEvent", record),
                visit=visit,
                detector=exposure.detector,
                truth=field.truth,
            )
        )
        tables.append(field.objects)
    objects = pd.concat(tables, ignore_index=True) if tables else pd.DataFrame()
    return SampleStream(events, objects, midpoint_mjd_tai - 0.5, midpoint_mjd_tai + 0.5)
