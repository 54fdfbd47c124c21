"""Reading and re-driving the dead-letter topic.

A dead letter holds the original key, value and headers of a rejected event
and why it was rejected. After a fix (a new store covering the time, a worker
bug fixed, a producer repaired), the events are put back on the input topic
unchanged, so the live workers process them as if they had just arrived.

Both operations read the dead-letter topic by assign/seek with a throw-away
group id and never commit, and stop by themselves at the end of every partition.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from . import wire

__all__ = ["DeadLetter", "read_dead_letters", "redrive"]


@dataclass(frozen=True)
class DeadLetter:
    partition: int
    offset: int
    record: dict[str, Any]

    @property
    def error_class(self) -> str:
        return str(self.record["errorClass"])


def read_dead_letters(
    bootstrap: str,
    topic: str,
    *,
    kafka: dict[str, str] | None = None,
    idle_timeout_s: float = 10.0,
) -> Iterator[DeadLetter]:
    """Every dead letter of ``topic``, from the beginning of each partition to its end."""
    from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, TopicPartition

    consumer = Consumer(
        {
            **(kafka or {}),
            "bootstrap.servers": bootstrap,
            "group.id": f"ssassoc-deadletters-{uuid.uuid4().hex[:12]}",
            "enable.auto.commit": False,
            "enable.partition.eof": True,
            "isolation.level": "read_committed",
        }
    )
    try:
        metadata = consumer.list_topics(topic, timeout=15)
        info = metadata.topics.get(topic)
        if info is None or info.error is not None:
            raise RuntimeError(f"dead-letter topic {topic!r} does not exist on {bootstrap}")
        partitions = sorted(info.partitions)
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
        pending = set(partitions)
        last_message = time.monotonic()
        while pending:
            msg = consumer.poll(0.5)
            if msg is None:
                if time.monotonic() - last_message > idle_timeout_s:
                    raise TimeoutError(f"no message nor end of partition within {idle_timeout_s} s")
                continue
            last_message = time.monotonic()
            error = msg.error()
            if error is not None:
                if error.code() == KafkaError._PARTITION_EOF:
                    pending.discard(int(msg.partition() or 0))
                    continue
                raise RuntimeError(f"reading {topic}: {error}")
            _, record = wire.decode("deadLetter", msg.value())
            yield DeadLetter(int(msg.partition() or 0), int(msg.offset() or 0), record)
    finally:
        consumer.close()


def redrive(
    bootstrap: str,
    dead_letter_topic: str,
    to_topic: str,
    *,
    select: Callable[[DeadLetter], bool] = lambda _: True,
    kafka: dict[str, str] | None = None,
    idle_timeout_s: float = 10.0,
) -> int:
    """Produce the original key/value/headers of the selected dead letters to ``to_topic``.

    Returns how many were re-driven; raises if any delivery fails (then none is
    lost: the dead letters stay where they are and the run can be repeated;
    duplicates are only possible for what was delivered before the failure).
    """
    from confluent_kafka import Producer

    producer = Producer({**(kafka or {}), "bootstrap.servers": bootstrap, "enable.idempotence": True})
    failures: list[str] = []

    def on_delivery(err: Any, _msg: Any) -> None:
        if err is not None:
            failures.append(str(err))

    count = 0
    for letter in read_dead_letters(bootstrap, dead_letter_topic, kafka=kafka, idle_timeout_s=idle_timeout_s):
        if not select(letter):
            continue
        record = letter.record
        headers = [(h["key"], h["value"]) for h in record["originalHeaders"]]
        headers.append(("ssassoc.redriven.from", f"{dead_letter_topic}/{letter.partition}/{letter.offset}".encode()))
        producer.produce(
            to_topic, key=record["originalKey"], value=record["originalValue"], headers=headers, on_delivery=on_delivery
        )
        producer.poll(0)
        count += 1
    remaining = producer.flush(60)
    if remaining or failures:
        raise RuntimeError(f"{remaining} re-driven events undelivered, {len(failures)} failed: {failures[:3]}")
    return count
