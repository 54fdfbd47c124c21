"""Helpers of the integration tests: topics, produce/read, committed offsets, worker processes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition

from ssassoc.worker.broker import create_topics
from ssassoc.worker.sample_events import SampleEvent

SESSION_TIMEOUT_MS = "6000"  # Tansu's first assignment takes session.timeout.ms / 2


@dataclass(frozen=True)
class Topics:
    input: str
    output: str
    dead_letter: str
    unassociated: str
    group: str

    def args(self) -> list[str]:
        return [
            "--input-topic", self.input, "--output-topic", self.output,
            "--dead-letter-topic", self.dead_letter, "--unassociated-topic", self.unassociated,
            "--group-id", self.group,
        ]  # fmt: skip


def make_topics(bootstrap: str, partitions: int = 3) -> Topics:
    tag = uuid.uuid4().hex[:10]
    topics = Topics(f"in-{tag}", f"out-{tag}", f"dlq-{tag}", f"un-{tag}", f"group-{tag}")
    create_topics(bootstrap, [topics.input, topics.output, topics.dead_letter, topics.unassociated],
                  partitions=partitions)
    return topics


def produce(bootstrap: str, topic: str, events: list[SampleEvent] | list[tuple[bytes, bytes]]) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True, "linger.ms": 5})
    for event in events:
        key, value = (event.key, event.value) if isinstance(event, SampleEvent) else event
        producer.produce(topic, value=value, key=key)
    assert producer.flush(15) == 0


@dataclass
class Record:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: dict[str, bytes]
    timestamp_ms: int


def read_topic(
    bootstrap: str, topic: str, *, min_count: int = 0, timeout_s: float = 30.0
) -> list[Record]:
    """Every message of ``topic``: assign all partitions from the start, read to EOF on each,
    and keep reading until at least ``min_count`` arrived (bounded by ``timeout_s``)."""
    consumer = Consumer({
        "bootstrap.servers": bootstrap, "group.id": f"reader-{uuid.uuid4().hex[:8]}",
        "enable.auto.commit": False, "enable.partition.eof": True,
        "isolation.level": "read_committed",
    })  # fmt: skip
    try:
        metadata = consumer.list_topics(topic, timeout=10)
        partitions = sorted(metadata.topics[topic].partitions)
        consumer.assign([TopicPartition(topic, p, 0) for p in partitions])
        records: list[Record] = []
        at_eof: set[int] = set()
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for msg in consumer.consume(500, 0.2):
                if msg.error():
                    if msg.error().code() == KafkaError._PARTITION_EOF:
                        at_eof.add(msg.partition())
                    continue
                at_eof.discard(msg.partition())
                records.append(Record(msg.topic(), msg.partition(), msg.offset(), msg.key(),
                                      msg.value(), dict(msg.headers() or []), msg.timestamp()[1]))
            if len(at_eof) == len(partitions) and len(records) >= min_count:
                break
        return records
    finally:
        consumer.close()


def _partitions(consumer: Consumer, topic: str) -> list[int]:
    return sorted(consumer.list_topics(topic, timeout=10).topics[topic].partitions)


def committed(bootstrap: str, group: str, topic: str) -> dict[int, int]:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False})
    try:
        partitions = _partitions(consumer, topic)
        found = consumer.committed([TopicPartition(topic, p) for p in partitions], timeout=10)
        return {tp.partition: tp.offset for tp in found}
    finally:
        consumer.close()


def end_offsets(bootstrap: str, topic: str) -> dict[int, int]:
    """Message count per partition, counted by reading (Tansu's high watermark is unreliable)."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "metadata"})
    try:
        counts = {p: 0 for p in _partitions(consumer, topic)}
    finally:
        consumer.close()
    for record in read_topic(bootstrap, topic, timeout_s=10):
        counts[record.partition] = max(counts[record.partition], record.offset + 1)
    return counts


class WorkerProcess:
    """``ssassoc worker`` as a subprocess with JSON logs in a file."""

    def __init__(self, args: list[str], log_path: Path, env: dict[str, str] | None = None) -> None:
        self.log_path = log_path
        full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
        self._log = open(log_path, "ab")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "ssassoc.worker", *args], stdout=self._log,
            stderr=subprocess.STDOUT, env=full_env,
        )  # fmt: skip

    def events(self) -> list[dict[str, Any]]:
        lines = []
        for line in self.log_path.read_text().splitlines():
            if line.startswith("{"):
                try:
                    lines.append(json.loads(line))
                except json.JSONDecodeError:
                    continue
        return lines

    def wait_for(self, predicate: Any, timeout_s: float = 60.0, what: str = "condition") -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if predicate(self.events()):
                return
            if self.process.poll() is not None:
                raise AssertionError(f"worker exited ({self.process.returncode}) before {what}:\n"
                                     + self.log_path.read_text()[-3000:])
            time.sleep(0.1)
        raise AssertionError(f"timed out waiting for {what}:\n" + self.log_path.read_text()[-3000:])

    def processed(self) -> int:
        return sum(1 for e in self.events() if e.get("event") in ("event processed", "event dead-lettered"))

    def signal(self, signum: int) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signum)

    def wait(self, timeout_s: float = 30.0) -> int:
        return self.process.wait(timeout_s)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)
        self._log.close()


def ss_pairs(records: list[Record]) -> list[tuple[int, int]]:
    from ssassoc.worker import wire

    pairs = []
    for record in records:
        _, value = wire.decode("ssSource", record.value)
        pairs.append((value["ssObjectId"], value["diaSourceId"]))
    return pairs


def wait_committed(bootstrap: str, group: str, topic: str, target: dict[int, int],
                   timeout_s: float = 60.0) -> None:
    """Wait until the group's committed offsets reach ``target`` on every partition."""
    deadline = time.monotonic() + timeout_s
    current: dict[int, int] = {}
    while time.monotonic() < deadline:
        current = committed(bootstrap, group, topic)
        # -1001 = nothing committed, fine for an empty partition
        if all(current.get(p, -1001) >= o or o == 0 for p, o in target.items()):
            return
        time.sleep(0.3)
    raise AssertionError(f"committed offsets {current} never reached {target}")


def produce_slowly(bootstrap: str, topic: str, events: list[SampleEvent], interval_s: float) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True})
    for event in events:
        producer.produce(topic, value=event.value, key=event.key)
        producer.flush(5)
        time.sleep(interval_s)
    assert producer.flush(15) == 0
