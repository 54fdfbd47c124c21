"""Every bad-event class lands in the dead-letter topic, and the stream goes on."""

from __future__ import annotations

import signal
import struct

import numpy as np
import pytest
from integration_helpers import make_topics, produce, read_topic, ss_pairs

from ssassoc.worker import wire
from ssassoc.worker.events import make_visit_event
from ssassoc.worker.sample_events import SampleStream, sample_field

pytestmark = pytest.mark.integration


def _event(field, **overrides) -> dict:
    e = field.exposure
    sources = overrides.pop("sources", field.sources)
    record = make_visit_event(visit=e.visit, detector=e.detector, band="r",
                              midpoint_mjd_tai=e.midpointMjdTai, exposure_time_s=30.0, wcs=e.wcs,
                              width=e.width, height=e.height, sources=sources)
    record.update(overrides)
    return record


def test_every_bad_class_is_dead_lettered(broker, stream: SampleStream, start_worker) -> None:
    topics = make_topics(broker.bootstrap, partitions=1)  # one partition: order is kept
    field = sample_field(np.random.default_rng(1), n_sources=100, n_objects=5)
    good = wire.encode("visitEvent", _event(field))
    bad: dict[str, bytes] = {"undecodable": b"\x07{not avro}",
                             "unknown_schema": struct.pack(">bI", 0, 4242) + good[5:]}
    record = _event(field)
    record["diaSources"]["dec"] = record["diaSources"]["dec"][:-8]
    bad["schema_invalid"] = wire.encode("visitEvent", record)
    record = _event(field)
    record["wcs"] = [c for c in record["wcs"] if c["keyword"] != "CTYPE2"] + [
        {"keyword": "CTYPE2", "value": "NOT-A-CTYPE"}]
    bad["bad_exposure"] = wire.encode("visitEvent", record)
    dupes = field.sources.copy()
    dupes.loc[3, "diaSourceId"] = dupes.loc[2, "diaSourceId"]
    bad["duplicate_ids"] = wire.encode("visitEvent", _event(field, sources=dupes))
    nans = field.sources.copy()
    nans["ra"] = np.nan
    bad["no_valid_sources"] = wire.encode("visitEvent", _event(field, sources=nans))
    bad["outside_ephemeris_coverage"] = wire.encode("visitEvent", _event(field, midpointMjdTai=61000.5))
    bad["too_large"] = good + b"\x00" * 300_000
    many = sample_field(np.random.default_rng(2), n_sources=2500, n_objects=5)
    bad["too_many_sources"] = wire.encode("visitEvent", _event(many))

    goods = stream.events[:3]
    messages = [(goods[0].key, goods[0].value)]
    messages += [(f"bad:{name}".encode(), value) for name, value in bad.items()]
    messages += [(e.key, e.value) for e in goods[1:]]
    produce(broker.bootstrap, topics.input, messages)
    worker = start_worker(topics, "--max-event-bytes", "200000", "--max-sources", "2000")
    letters = read_topic(broker.bootstrap, topics.dead_letter, min_count=len(bad), timeout_s=60)
    assert len(letters) == len(bad)
    for offset, (letter, (name, value)) in enumerate(zip(letters, bad.items(), strict=True), start=1):
        _, envelope = wire.decode("deadLetter", letter.value)
        assert envelope["errorClass"] == name, envelope["errorMessage"]
        assert letter.headers["ssassoc.error.class"] == name.encode()
        assert envelope["originalValue"] == value
        assert letter.key == f"bad:{name}".encode()
        assert (envelope["sourceTopic"], envelope["sourcePartition"], envelope["sourceOffset"]) == (
            topics.input, 0, offset)
        assert envelope["workerVersion"] and envelope["errorMessage"]
    # The good events before and after the bad ones were all processed.
    expected = set().union(*(e.truth for e in goods))
    pairs = ss_pairs(read_topic(broker.bootstrap, topics.output, min_count=len(expected)))
    assert set(pairs) == expected
    logged = [e for e in worker.events() if e.get("event") == "event dead-lettered"]
    assert sorted(e["error_class"] for e in logged) == sorted(bad)
    worker.signal(signal.SIGTERM)
    assert worker.wait(30) == 0
