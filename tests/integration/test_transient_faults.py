"""A store that is temporarily unreadable: the event is retried with backoff, never skipped.

The worker runs in-process against the real broker; only the ephemeris provider is
a stand-in that fails its first calls with OSError (as a store on a flaky network
file system would), then answers from the test object table.
"""

from __future__ import annotations

import threading

import pandas as pd
import pytest
from integration_helpers import SESSION_TIMEOUT_MS, make_topics, produce, read_topic, ss_pairs

from ssassoc.core import Exposure
from ssassoc.worker.config import WorkerSettings
from ssassoc.worker.loop import build_worker
from ssassoc.worker.sample_events import SampleStream

pytestmark = pytest.mark.integration


class FlakyStore:
    def __init__(self, inner, failures: int) -> None:
        self.inner = inner
        self.failures = failures
        self.calls = 0

    def query_exposure(self, exposure: Exposure) -> pd.DataFrame:
        self.calls += 1
        if self.calls <= self.failures:
            raise OSError("Input/output error (simulated NFS hiccup)")
        return self.inner.query_exposure(exposure)


@pytest.mark.parametrize("process_batch_size", [1, 32])
def test_unreadable_store_is_retried_not_skipped(broker, stream: SampleStream, process_batch_size: int) -> None:
    topics = make_topics(broker.bootstrap, partitions=2)
    events = stream.events[:6]
    produce(broker.bootstrap, topics.input, events)
    settings = WorkerSettings(
        bootstrap_servers=broker.bootstrap, input_topic=topics.input, output_topic=topics.output,
        dead_letter_topic=topics.dead_letter, group_id=topics.group, retry_initial_s=0.2,
        retry_max_s=0.5, commit_interval_s=0.2, kafka={"session.timeout.ms": SESSION_TIMEOUT_MS},
        process_batch_size=process_batch_size,
    )  # fmt: skip
    store = FlakyStore(stream.provider(), failures=4)
    worker = build_worker(settings, provider=store)
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    try:
        expected = set().union(*(e.truth for e in events))
        pairs = ss_pairs(read_topic(broker.bootstrap, topics.output, min_count=len(expected), timeout_s=60))
        assert set(pairs) == expected and len(pairs) == len(expected)
        retries = worker.health.counters["transient_retries_total"]
        if process_batch_size == 1:
            assert retries == 4  # one retry per failed call
        else:
            # A batch's failed events run again alone, calling the store again: how many of the
            # 4 failures the batch absorbs depends on how the events arrive, so the retries
            # counted by the one-event path are anywhere from 0 to 4. The store did fail 4
            # times, and every event still got its outputs and none became a dead letter.
            assert 0 <= retries <= 4
            assert store.calls >= 4 + len(events)
        assert read_topic(broker.bootstrap, topics.dead_letter, timeout_s=3) == []
    finally:
        worker.stop.request()
        thread.join(30)
    assert not thread.is_alive() and not worker.health.ready
