"""The loop's processing batches, with stand-ins for the Kafka clients: outputs in offset
order, bad events dead-lettered alone, events of lost partitions dropped, one log event each."""

from __future__ import annotations

from typing import Any

import pytest

from ssassoc.worker.config import WorkerSettings
from ssassoc.worker.loop import StopFlag, Worker
from ssassoc.worker.processing import EventProcessor
from ssassoc.worker.sample_events import SampleStream


class Raw:
    """What the loop reads of a confluent_kafka Message."""

    def __init__(self, value: bytes, partition: int, offset: int) -> None:
        self._value, self._partition, self._offset = value, partition, offset

    def topic(self) -> str:
        return "in"

    def partition(self) -> int:
        return self._partition

    def offset(self) -> int:
        return self._offset

    def value(self) -> bytes:
        return self._value

    def key(self) -> bytes:
        return b"k"

    def headers(self) -> list[tuple[str, bytes]]:
        return [("h", b"1")]

    def timestamp(self) -> tuple[int, int]:
        return (1, 1_000)

    def error(self) -> None:
        return None


class Producer:
    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes | None, Any]] = []

    def produce(self, topic: str, value: bytes, key: bytes | None, headers: Any = None) -> None:
        self.sent.append((topic, key, dict(headers or [])))

    def poll(self, timeout: float) -> int:
        return 0


class Log:
    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []

    def bind(self, **kw: Any) -> Log:
        return self

    def info(self, event: str, **kw: Any) -> None:
        self.events.append((event, kw))

    warning = error = debug = info


@pytest.fixture
def worker(processor: EventProcessor) -> Worker:
    settings = WorkerSettings(processing_guarantee="at-least-once", output_topic="out", dead_letter_topic="dlq",
                              unassociated_topic="unassoc", process_batch_size=8)  # fmt: skip
    w = Worker(settings, processor, Log(), stop=StopFlag())
    w._producer = Producer()  # type: ignore[assignment]
    w.assigned = {("in", 0), ("in", 1)}
    return w


def test_a_batch_is_finished_in_order_and_a_bad_event_dead_lettered_alone(worker: Worker, stream: SampleStream):
    values = [e.value for e in stream.events]
    values.insert(1, b"\x00garbage")
    worker.handle_batch([Raw(v, 0, 10 + i) for i, v in enumerate(values)])
    sent = worker.producer.sent  # type: ignore[attr-defined]
    origins = [h.get("ssassoc.input", h.get("ssassoc.source.offset")) for _, _, h in sent]
    # outputs of each event together, events in the order given, the bad one in its place
    order = [o for i, o in enumerate(origins) if i == 0 or o != origins[i - 1]]
    assert order == [b"in/0/10", b"11", b"in/0/12", b"in/0/13"]
    assert sum(1 for t, _, _ in sent if t == "dlq") == 1
    expected = set().union(*(e.truth for e in stream.events))
    assert sum(1 for t, _, _ in sent if t == "out") == len(expected)
    assert worker.window.events == 4 and worker.window.next == {("in", 0): 14}
    logged = [kw for event, kw in worker.log.events if event == "event processed"]  # type: ignore[attr-defined]
    assert [kw["offset"] for kw in logged] == [10, 12, 13]
    # one batch of the four messages handed over (the bad one then ran alone)
    assert [kw["taskMetadata"].get("ssSingleFrameAssociation.batchSize") for kw in logged] == [4, 4, 4]
    assert [kw["offset"] for event, kw in worker.log.events if event == "event dead-lettered"] == [11]  # type: ignore[attr-defined]


def test_events_of_a_partition_no_longer_ours_are_dropped(worker: Worker, stream: SampleStream):
    raws = [Raw(e.value, i % 2, 10 + i) for i, e in enumerate(stream.events)]
    worker.assigned = {("in", 1)}  # partition 0 revoked after the poll
    worker.handle_batch(raws)
    assert worker.window.events == 1 and set(worker.window.next) == {("in", 1)}


def test_batch_size_one_is_the_one_event_path(worker: Worker, stream: SampleStream, processor: EventProcessor):
    worker._process_batch = None
    worker.handle_batch([Raw(e.value, 0, i) for i, e in enumerate(stream.events)])
    logged = [kw for event, kw in worker.log.events if event == "event processed"]  # type: ignore[attr-defined]
    assert [kw["offset"] for kw in logged] == [0, 1, 2]
