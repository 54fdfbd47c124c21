"""EventProcessor: the expected ssSources out, and every bad-event class classified."""

from __future__ import annotations

import struct

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ssassoc.core import Exposure
from ssassoc.core.sample_data import make_tan_wcs
from ssassoc.worker import wire
from ssassoc.worker.deadletter import ERROR_CLASSES, InputMessage, classify
from ssassoc.worker.events import exposure_from_event, make_visit_event, wcs_to_cards
from ssassoc.worker.processing import EventLimits, EventProcessor, TransientFault
from ssassoc.worker.sample_events import SampleStream, sample_field


def _message(value: bytes | None, offset: int = 0) -> InputMessage:
    return InputMessage(topic="in", partition=0, offset=offset, value=value, key=b"k")


def _event(**overrides: object) -> dict:
    field = sample_field(np.random.default_rng(3), n_sources=50, n_objects=5)
    e = field.exposure
    sources = overrides.pop("sources", field.sources)
    record = make_visit_event(
        visit=7, detector=3, band="g", midpoint_mjd_tai=e.midpointMjdTai, exposure_time_s=30.0,
        wcs=e.wcs, width=e.width, height=e.height, sources=sources,  # type: ignore[arg-type]
    )
    record.update(overrides)
    return record


def _classify(processor: EventProcessor, value: bytes | None) -> str:
    with pytest.raises(Exception) as info:
        processor.process(_message(value))
    return classify(info.value)


def test_event_gives_the_true_associations(stream: SampleStream, processor: EventProcessor) -> None:
    for event in stream.events:
        result = processor.process(_message(event.value))
        ss = [wire.decode("ssSource", o.value)[1] for o in result.outputs if o.topic == "out"]
        pairs = {(r["ssObjectId"], r["diaSourceId"]) for r in ss}
        assert pairs == set(event.truth)
        assert [o.key for o in result.outputs if o.topic == "out"] == [
            str(r["diaSourceId"]).encode() for r in ss
        ]
        assert result.counts["nAssociated"] == len(ss)
        assert result.counts["nSources"] == 300
        assert set(result.timings_ms) == {"decodeMs", "ephemerisQueryMs", "associationMs", "encodeMs"}
        unassoc = [o for o in result.outputs if o.topic == "unassoc"]
        assert len(unassoc) == 1
        record = wire.decode("unassociatedSsObjects", unassoc[0].value)[1]
        assert len(record["ssObjectId"]) == result.counts["nUnassociated"]
        assert not set(record["ssObjectId"]) & {p[0] for p in pairs}


def test_worker_output_equals_the_core_run_directly(stream: SampleStream, processor: EventProcessor) -> None:
    """The worker must not change what the science core computes (floats as Avro float32)."""
    from ssassoc.core import SsSingleFrameAssociationTask

    event = stream.events[0]
    version, record = wire.decode("visitEvent", event.value)
    exposure = exposure_from_event(record)
    from ssassoc.worker.events import unpack_sources

    sources = unpack_sources(record["diaSources"], version)
    direct = SsSingleFrameAssociationTask().run(
        exposure, sources, band="r", solarSystemObjectTable=stream.provider().query_exposure(exposure)
    ).associatedSsSources
    result = processor.process(_message(event.value))
    ss = [wire.decode("ssSource", o.value)[1] for o in result.outputs if o.topic == "out"]
    by_id = {r["diaSourceId"]: r for r in ss}
    assert len(by_id) == len(direct)
    for row in direct:
        mine = by_id[int(row["diaSourceId"])]
        assert mine["ssObjectId"] == int(row["ssObjectId"])
        assert mine["eclLambda"] == pytest.approx(float(row["eclLambda"]), abs=1e-12)
        assert mine["ephOffset"] == pytest.approx(float(row["ephOffset"]), rel=1e-6)


def test_rows_without_coordinates_are_dropped_and_counted(processor: EventProcessor) -> None:
    field = sample_field(np.random.default_rng(3), n_sources=50, n_objects=5)
    sources = field.sources.copy()
    sources.loc[:4, "ra"] = np.nan
    value = wire.encode("visitEvent", _event(sources=sources))
    provider_processor = EventProcessor(
        _FixedProvider(field.objects), output_topic="out"
    )
    result = provider_processor.process(_message(value))
    assert result.counts["nBadSources"] == 5
    assert result.counts["nSources"] == 50


class _FixedProvider:
    def __init__(self, table: pd.DataFrame) -> None:
        self.table = table

    def query_exposure(self, exposure: Exposure) -> pd.DataFrame:
        return self.table.copy()


class _BrokenStore:
    def query_exposure(self, exposure: Exposure) -> pd.DataFrame:
        raise OSError("stale NFS handle")


@pytest.fixture(scope="module")
def fixed() -> EventProcessor:
    field = sample_field(np.random.default_rng(3), n_sources=50, n_objects=5)
    return EventProcessor(_FixedProvider(field.objects), output_topic="out",
                          limits=EventLimits(max_event_bytes=200_000, max_sources=1000))


def test_bad_classes(fixed: EventProcessor, stream: SampleStream) -> None:
    good = wire.encode("visitEvent", _event())
    assert fixed.process(_message(good)).counts["nSources"] == 50
    seen = {
        "undecodable": _classify(fixed, b"\x07not avro"),
        "unknown_schema": _classify(fixed, struct.pack(">bI", 0, 4242) + good[5:]),
    }
    # column bytes not matching nRows
    record = _event()
    record["diaSources"]["ra"] = record["diaSources"]["ra"][:-8]
    seen["schema_invalid"] = _classify(fixed, wire.encode("visitEvent", record))
    # singular CD matrix: a bad WCS
    record = _event()
    record["wcs"] = [c for c in record["wcs"] if not c["keyword"].startswith(("PC", "CDELT"))] + [
        {"keyword": k, "value": 0.0} for k in ("CD1_1", "CD1_2", "CD2_1", "CD2_2")
    ]
    seen["bad_exposure"] = _classify(fixed, wire.encode("visitEvent", record))
    assert seen.pop("bad_exposure") == "bad_exposure"
    field = sample_field(np.random.default_rng(3), n_sources=50, n_objects=5)
    dupes = field.sources.copy()
    dupes.loc[1, "diaSourceId"] = dupes.loc[0, "diaSourceId"]
    seen["duplicate_ids"] = _classify(fixed, wire.encode("visitEvent", _event(sources=dupes)))
    nan = field.sources.copy()
    nan["ra"] = np.nan
    seen["no_valid_sources"] = _classify(fixed, wire.encode("visitEvent", _event(sources=nan)))
    seen["too_large"] = _classify(fixed, good + b"\x00" * 200_000)
    many = sample_field(np.random.default_rng(3), n_sources=1500, n_objects=5).sources
    seen["too_many_sources"] = _classify(fixed, wire.encode("visitEvent", _event(sources=many)))
    # the sample stream's provider only covers MJD 60799.6-60800.6
    stream_processor = EventProcessor(stream.provider(), output_topic="out")
    seen["outside_ephemeris_coverage"] = _classify(
        stream_processor, wire.encode("visitEvent", _event(midpointMjdTai=61000.0))
    )
    seen["bad_exposure"] = _classify(fixed, wire.encode("visitEvent", _event(observatory="nope")))
    broken_table = EventProcessor(_FixedProvider(field.objects.drop(columns=["ephRa"])), output_topic="out")
    seen["invalid_event"] = _classify(broken_table, good)
    assert seen == {k: k for k in seen}
    assert set(seen) | {"internal_error", "invalid_event", "bad_exposure"} <= set(ERROR_CLASSES)


def test_unreadable_store_is_transient() -> None:
    processor = EventProcessor(_BrokenStore(), output_topic="out")
    with pytest.raises(TransientFault, match="stale NFS"):
        processor.process(_message(wire.encode("visitEvent", _event())))


def test_empty_source_table_is_fine(fixed: EventProcessor) -> None:
    empty = sample_field(np.random.default_rng(3), n_sources=50, n_objects=5).sources.iloc[:0]
    result = fixed.process(_message(wire.encode("visitEvent", _event(sources=empty))))
    assert result.counts["nAssociated"] == 0 and result.counts["nSources"] == 0


@settings(max_examples=40, deadline=None)
@given(
    ra=st.floats(0, 359.9), dec=st.floats(-85, 85), rot=st.floats(0, 360),
    scale=st.floats(0.05, 2.0), a30=st.floats(-1e-9, 1e-9), b03=st.floats(-1e-9, 1e-9),
)
def test_fast_wcs_matches_astropy_header_parsing(
    ra: float, dec: float, rot: float, scale: float, a30: float, b03: float
) -> None:
    from astropy.wcs import Sip

    wcs = make_tan_wcs(ra, dec, 2000, 1000, scale, rot)
    if a30 or b03:
        wcs.wcs.ctype = ["RA---TAN-SIP", "DEC--TAN-SIP"]
        a = np.zeros((4, 4))
        b = np.zeros((4, 4))
        a[3, 0], b[0, 3] = a30, b03
        wcs.sip = Sip(a, b, None, None, wcs.wcs.crpix)
    event = {"wcs": wcs_to_cards(wcs), "width": 2000, "height": 1000, "midpointMjdTai": 60000.0,
             "observatory": "X05", "visit": 1, "detector": 1}
    fast = exposure_from_event(event)
    slow = Exposure.from_fits_header({c["keyword"]: c["value"] for c in event["wcs"]},
                                     width=2000, height=1000, midpointMjdTai=60000.0)
    x = np.array([-50.0, 0.0, 999.5, 1999.0, 2100.0])
    y = np.array([-50.0, 500.0, 0.0, 999.0, 1100.0])
    r1, d1 = fast.pixel_to_sky_deg(x, y)
    r2, d2 = slow.pixel_to_sky_deg(x, y)
    assert np.allclose(d1, d2, atol=1e-10)
    assert np.allclose(((r1 - r2 + 180) % 360) - 180, 0, atol=1e-10)
