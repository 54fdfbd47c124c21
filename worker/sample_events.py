"""Synthetic visit events for the demo, the tests and the benchmarks.

Each event is one detector of its own visit, pointed at its own patch of sky
(so objects of one event never fall on another), built from the core's
seeded :func:`ssassoc.core.sample_data.synthetic_field`. The union of their
predicted objects is a fixed object table (:class:`TableEphemerisProvider`),
and the true (ssObjectId, diaSourceId) pairs are known.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from ssassoc.core.sample_data import synthetic_field

from . import wire
from .ephemeris import TableEphemerisProvider
from .events import make_visit_event

__all__ = ["SampleEvent", "SampleStream", "sample_stream"]


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
    events: list[SampleEvent] = []
    tables: list[pd.DataFrame] = []
    for i in range(n_events):
        visit = first_visit + i
        # Distinct pointings 2 deg apart in RA along dec 7: detectors never overlap.
        field = synthetic_field(
            n_sources=n_sources, n_objects=n_objects, seed=seed * 100_003 + i, visit=visit,
            detector=i % 189, ra_deg=(10.0 + 2.0 * i) % 360.0, dec_deg=7.0 + 0.001 * (i // 170),
            midpoint_mjd_tai=midpoint_mjd_tai,
        )  # fmt: skip
        exposure = field.exposure
        record = make_visit_event(
            visit=visit, detector=exposure.detector, band="r",
            midpoint_mjd_tai=exposure.midpointMjdTai, exposure_time_s=30.0, wcs=exposure.wcs,
            width=exposure.width, height=exposure.height, sources=field.sources,
        )  # fmt: skip
        truth = field.truth[field.truth["diaSourceId"] >= 0]
        pairs = frozenset(
            zip(truth["ssObjectId"].astype(int).tolist(), truth["diaSourceId"].astype(int).tolist(),
                strict=True)
        )
        events.append(
            SampleEvent(
                key=f"{visit}:{exposure.detector}".encode(),
                value=wire.encode("visitEvent", record),
                visit=visit,
                detector=exposure.detector,
                truth=pairs,
            )
        )
        tables.append(field.objects)
    objects = pd.concat(tables, ignore_index=True) if tables else pd.DataFrame()
    return SampleStream(events, objects, midpoint_mjd_tai - 0.5, midpoint_mjd_tai + 0.5)
