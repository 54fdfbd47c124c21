"""Broker restart under the durable variant (Tansu on SeaweedFS S3): nothing lost."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest
from integration_helpers import end_offsets, make_topics, produce, read_topic, ss_pairs, wait_committed

from ssassoc.worker.broker import LocalBroker, SeaweedS3
from ssassoc.worker.sample_events import SampleStream

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture()
def durable_broker(tmp_path: Path):
    s3 = SeaweedS3(tmp_path / "seaweed").start()
    broker = LocalBroker(s3=s3, log=tmp_path / "tansu.log").start()
    try:
        yield broker
    finally:
        broker.close()


def test_broker_restart_loses_nothing(durable_broker: LocalBroker, stream: SampleStream, start_worker) -> None:
    bootstrap = durable_broker.bootstrap
    topics = make_topics(bootstrap, partitions=2)
    produce(bootstrap, topics.input, stream.events[:10])
    worker = start_worker(topics, "--processing-guarantee", "at-least-once", bootstrap=bootstrap)
    wait_committed(bootstrap, topics.group, topics.input, end_offsets(bootstrap, topics.input), 60)

    durable_broker.kill()  # SIGKILL the broker with the worker running
    durable_broker.start()  # same port, same S3 bucket
    produce(bootstrap, topics.input, stream.events[10:20])
    wait_committed(bootstrap, topics.group, topics.input, end_offsets(bootstrap, topics.input), 90)
    worker.signal(signal.SIGTERM)
    assert worker.wait(30) == 0

    expected = set().union(*(e.truth for e in stream.events[:20]))
    pairs = ss_pairs(read_topic(bootstrap, topics.output, min_count=len(expected), timeout_s=30))
    assert set(pairs) == expected
