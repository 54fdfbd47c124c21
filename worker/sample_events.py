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
from ssassoc.core.sample_data import make_tan_wcs

from . import wire
from .ephemeris import TableEphemerisProvider
from .events import make_visit_event

__all__ = ["SampleEvent", "SampleField", "SampleStream", "sample_field", "sample_stream"]

AU_KM = 149_597_870.7


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
    """One detector image: objects (10 % just off the chip), 90 % detected, plus field sources."""
    exposure = Exposure(
        wcs=make_tan_wcs(ra_deg, dec_deg, width, height, 0.2), width=width, height=height,
        midpointMjdTai=midpoint_mjd_tai, observatory="X05", visit=visit, detector=detector,
    )  # fmt: skip
    x = rng.uniform(0, width - 1, n_objects)
    y = rng.uniform(0, height - 1, n_objects)
    n_off = n_objects // 10
    x[:n_off] = -rng.uniform(60, 200, n_off)
    eph_ra, eph_dec = exposure.pixel_to_sky_deg(x, y)
    ra_r, dec_r = np.radians(eph_ra), np.radians(eph_dec)
    direction = np.stack((np.cos(dec_r) * np.cos(ra_r), np.cos(dec_r) * np.sin(ra_r), np.sin(dec_r)), -1)
    east = np.stack((-np.sin(ra_r), np.cos(ra_r), np.zeros(n_objects)), -1)
    north = np.cross(direction, east)
    distance_au = np.exp(rng.uniform(np.log(0.3), np.log(40.0), n_objects))
    observer = np.array([0.6, -0.75, -0.3])  # heliocentric observer [AU], ~0.98 AU
    topo = direction * distance_au[:, None]
    helio = observer + topo
    topo_v = rng.normal(0.0, 15.0, (n_objects, 3))  # [km/s]
    helio_v = topo_v + np.array([20.0, 16.0, 7.0])
    deg_per_day = np.degrees(86_400.0 / (distance_au * AU_KM))
    objects = pd.DataFrame({
        "ssObjectId": first_object_id + np.arange(n_objects, dtype=np.int64),
        "designation": [f"2026 S{chr(65 + i % 25)}{i}" for i in range(n_objects)],
        "ephRa": eph_ra, "ephDec": eph_dec,
        "ephRateRa": np.einsum("ij,ij->i", topo_v, east) * deg_per_day,
        "ephRateDec": np.einsum("ij,ij->i", topo_v, north) * deg_per_day,
        **{f"helio_{a}": helio[:, i] for i, a in enumerate("xyz")},
        **{f"topo_{a}": topo[:, i] for i, a in enumerate("xyz")},
        **{f"helio_v{a}": helio_v[:, i] for i, a in enumerate("xyz")},
        **{f"topo_v{a}": topo_v[:, i] for i, a in enumerate("xyz")},
        "ephVmag": rng.uniform(16.0, 24.5, n_objects),
        "ephUncertainty": np.full(n_objects, 0.2),
    })  # fmt: skip
    detected = np.flatnonzero((np.arange(n_objects) >= n_off) & (rng.random(n_objects) < 0.9))
    noise_deg = rng.normal(0.0, 0.1 / 3600.0, (len(detected), 2))
    det_ra = eph_ra[detected] + noise_deg[:, 0] / np.cos(dec_r[detected])
    det_dec = eph_dec[detected] + noise_deg[:, 1]
    n_field = max(n_sources - len(detected), 0)
    field_ra, field_dec = exposure.pixel_to_sky_deg(
        rng.uniform(0, width - 1, n_field), rng.uniform(0, height - 1, n_field)
    )
    n_rows = len(detected) + n_field
    ids = first_source_id + rng.permutation(n_rows).astype(np.int64)
    sources = pd.DataFrame({
        "diaSourceId": ids,
        "ra": np.concatenate((det_ra, field_ra)), "dec": np.concatenate((det_dec, field_dec)),
        "raErr": np.full(n_rows, 0.1 / 3600), "decErr": np.full(n_rows, 0.1 / 3600),
        "psfFlux": rng.lognormal(8.0, 1.0, n_rows), "psfFluxErr": rng.lognormal(5.0, 0.3, n_rows),
        "snr": rng.uniform(5, 100, n_rows), "extendedness": rng.random(n_rows),
    })  # fmt: skip
    x_pix, y_pix = exposure.sky_to_pixel(sources["ra"].to_numpy(), sources["dec"].to_numpy())
    sources["x"], sources["y"] = x_pix, y_pix
    truth = frozenset(
        zip(objects["ssObjectId"].to_numpy()[detected].tolist(), ids[: len(detected)].tolist(), strict=True)
    )
    return SampleField(exposure, sources, objects, truth)


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
