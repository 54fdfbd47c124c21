"""EventProcessor.process_batch: per event, exactly what process() gives; bad events isolated."""

from __future__ import annotations

import numpy as np
import pytest

from ssassoc.worker import wire
from ssassoc.worker.deadletter import InputMessage, classify
from ssassoc.worker.events import make_visit_event
from ssassoc.worker.processing import EventProcessor
from ssassoc.worker.sample_events import SampleStream, sample_field, sample_stream


def _message(value: bytes | None, offset: int) -> InputMessage:
    return InputMessage(topic="in", partition=0, offset=offset, value=value, key=b"k")


@pytest.fixture(scope="module")
def many() -> SampleStream:
    return sample_stream(12, n_sources=200, n_objects=15, seed=11)


def _duplicate_ids_event(stream: SampleStream) -> bytes:
    field = sample_field(np.random.default_rng(1), n_sources=40, n_objects=3, midpoint_mjd_tai=60800.1)
    sources = field.sources.copy()
    sources.loc[1, "diaSourceId"] = sources.loc[0, "diaSourceId"]
    e = field.exposure
    record = make_visit_event(
        visit=1, detector=1, band="r", midpoint_mjd_tai=e.midpointMjdTai, exposure_time_s=30.0, wcs=e.wcs,
        width=e.width, height=e.height, sources=sources,
    )  # fmt: skip
    return wire.encode("visitEvent", record)


@pytest.mark.parametrize("unassociated_topic", [None, "unassoc"])
def test_batch_outputs_equal_one_by_one(many: SampleStream, unassociated_topic: str | None) -> None:
    processor = EventProcessor(many.provider(), output_topic="out", unassociated_topic=unassociated_topic)
    bad = {3: b"\x07not avro", 7: _duplicate_ids_event(many)}
    values = [bad.get(i, e.value) for i, e in enumerate(many.events)]
    messages = [_message(v, i) for i, v in enumerate(values)]
    batch = processor.process_batch(messages)
    assert len(batch) == len(messages)
    for i, (message, outcome) in enumerate(zip(messages, batch, strict=True)):
        if i in bad:
            assert isinstance(outcome, Exception)
            with pytest.raises(Exception) as raised:  # the caller's fallback: process() alone
                processor.process(message)
            assert classify(raised.value) == classify(outcome)
            continue
        single = processor.process(message)
        assert not isinstance(outcome, Exception)
        assert [(o.topic, o.key, o.value, o.headers) for o in outcome.outputs] == [
            (o.topic, o.key, o.value, o.headers) for o in single.outputs
        ]
        assert outcome.counts == single.counts
        assert (outcome.visit, outcome.detector, outcome.band) == (single.visit, single.detector, single.band)
        assert set(outcome.timings_ms) == set(single.timings_ms)
        assert outcome.task_metadata["ssSingleFrameAssociation.batchSize"] == len(messages)
    pairs = {
        (r["ssObjectId"], r["diaSourceId"])
        for outcome in batch
        if not isinstance(outcome, Exception)
        for r in (wire.decode("ssSource", o.value)[1] for o in outcome.outputs if o.topic == "out")
    }
    expected = set().union(*(e.truth for i, e in enumerate(many.events) if i not in bad))
    assert pairs == expected


def test_empty_batch(many: SampleStream) -> None:
    assert EventProcessor(many.provider(), output_topic="out").process_batch([]) == []
