"""``ssassoc replay``: reprocess a range of the input topic, outside the consumer group.

The replay consumer uses assign/seek under a throw-away group id and never
commits, so the live group's offsets and assignment are untouched. The range
ends per partition (``--to-offset`` exclusive, ``--to-time``, or the partition
end reported by ``enable.partition.eof``); the job stops when every partition
has ended. Old messages decode with their own schema version (see ``wire``).
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Producer, TopicPartition

from .config import WorkerSettings
from .deadletter import (
    InputMessage,
    OutputMessage,
    classify,
    dead_letter_message,
    kafka_headers,
    message_headers,
)
from .ephemeris import EphemerisProvider
from .loop import StopFlag, processor_from_settings, producer_config
from .processing import EventProcessor, TransientFault

__all__ = [
    "ReplayError",
    "ReplayRange",
    "parse_offsets",
    "parse_time_ms",
    "resolve_start",
    "run_replay_job",
]


class ReplayError(RuntimeError):
    """The requested range cannot be replayed as asked (e.g. deleted by retention)."""


def parse_offsets(text: str) -> dict[int, int]:
    """``"0:10,2:5"`` -> ``{0: 10, 2: 5}``."""
    result: dict[int, int] = {}
    for item in text.split(","):
        partition, sep, offset = item.strip().partition(":")
        if not sep:
            raise ValueError(f"expected PARTITION:OFFSET, got {item!r}")
        p, o = int(partition), int(offset)
        if p < 0 or o < 0:
            raise ValueError(f"partition and offset must be >= 0, got {item!r}")
        result[p] = o
    return result


def parse_time_ms(text: str) -> int:
    """ISO 8601 (naive = UTC) -> milliseconds since 1970."""
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


@dataclass(frozen=True)
class ReplayRange:
    from_beginning: bool = False
    from_offsets: dict[int, int] | None = None
    from_time_ms: int | None = None
    to_offsets: dict[int, int] | None = None
    to_time_ms: int | None = None

    @classmethod
    def from_args(
        cls,
        *,
        from_beginning: bool = False,
        from_offset: str | None = None,
        from_time: str | None = None,
        to_offset: str | None = None,
        to_time: str | None = None,
    ) -> ReplayRange:
        starts = sum([bool(from_beginning), from_offset is not None, from_time is not None])
        if starts != 1:
            raise ValueError("give exactly one of --from-beginning, --from-offset, --from-time")
        if to_offset is not None and to_time is not None:
            raise ValueError("give at most one of --to-offset, --to-time")
        return cls(
            from_beginning=from_beginning,
            from_offsets=parse_offsets(from_offset) if from_offset is not None else None,
            from_time_ms=parse_time_ms(from_time) if from_time is not None else None,
            to_offsets=parse_offsets(to_offset) if to_offset is not None else None,
            to_time_ms=parse_time_ms(to_time) if to_time is not None else None,
        )


@dataclass
class _PartitionState:
    start: int
    end: int | None  # exclusive end offset, if given
    done: bool = False
    first: int | None = None
    last: int | None = None
    events: int = 0


@dataclass
class _Counters:
    events: int = 0
    ss_sources: int = 0
    dead_letters: int = 0
    failed_deliveries: list[str] = field(default_factory=list)


def resolve_start(topic: str, partition: int, wanted: int, low: int, clamp: bool) -> int:
    """The start offset, given the earliest retained one (``low``; < 0 = unknown)."""
    if low >= 0 and wanted < low:
        if not clamp:
            raise ReplayError(
                f"offset {wanted} of {topic}[{partition}] was deleted by retention (earliest "
                f"retained: {low}); use --clamp to start there"
            )
        return low
    return wanted


def _start_offsets(
    consumer: Consumer, topic: str, partitions: list[int], replay: ReplayRange, clamp: bool
) -> dict[int, int]:
    starts: dict[int, int] = {}
    if replay.from_time_ms is not None:
        found = consumer.offsets_for_times(
            [TopicPartition(topic, p, replay.from_time_ms) for p in partitions], timeout=15
        )
        for tp in found:
            starts[tp.partition] = tp.offset  # -1: nothing at/after that time
        return starts
    for p in partitions:
        low, _high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=15)
        if replay.from_beginning:
            starts[p] = OFFSET_BEGINNING if low < 0 else low
            continue
        assert replay.from_offsets is not None
        if p not in replay.from_offsets:
            continue  # partition not asked for
        starts[p] = resolve_start(topic, p, replay.from_offsets[p], low, clamp)
    unknown = sorted(set(replay.from_offsets or {}) - set(partitions))
    if unknown:
        raise ReplayError(f"{topic} has no partitions {unknown} (it has {partitions})")
    return starts


def run_replay_job(
    settings: WorkerSettings,
    replay: ReplayRange,
    *,
    log: Any,
    stop: StopFlag | None = None,
    clamp: bool = False,
    idle_timeout_s: float = 30.0,
    provider: EphemerisProvider | None = None,
) -> dict[str, Any]:
    """Replay ``replay`` of ``settings.input_topic`` to ``settings.output_topic``; returns a summary."""
    stop = stop or StopFlag()
    processor = processor_from_settings(settings, provider)
    topic = settings.input_topic
    conf = settings.common_kafka()
    conf.update(
        {
            # A throw-away group: assign() needs none for fetching, but librdkafka wants an id.
            "group.id": f"{settings.group_id}-replay-{uuid.uuid4().hex[:12]}",
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "enable.partition.eof": True,
            "isolation.level": "read_committed",
        }
    )
    consumer = Consumer(conf)
    producer = Producer(producer_config(settings, transactional=False))
    counters = _Counters()

    def delivered(err: KafkaError | None, msg: Any) -> None:
        if err is not None:
            counters.failed_deliveries.append(str(err))

    def produce(out: OutputMessage) -> None:
        while True:
            try:
                producer.produce(
                    out.topic, value=out.value, key=out.key, headers=kafka_headers(out.headers), on_delivery=delivered
                )
                return
            except BufferError:
                producer.poll(0.1)

    try:
        metadata = consumer.list_topics(topic, timeout=15)
        topic_md = metadata.topics.get(topic)
        if topic_md is None or topic_md.error is not None or not topic_md.partitions:
            raise ReplayError(f"input topic {topic!r} not found")
        partitions = sorted(topic_md.partitions)
        starts = _start_offsets(consumer, topic, partitions, replay, clamp)
        states: dict[int, _PartitionState] = {}
        for p, start in starts.items():
            end = (replay.to_offsets or {}).get(p)
            state = _PartitionState(start=start, end=end)
            state.done = start == -1 or (end is not None and start >= 0 and start >= end)
            states[p] = state
        active = [TopicPartition(topic, p, s.start) for p, s in states.items() if not s.done]
        log.info(
            "replay starting",
            topic=topic,
            output_topic=settings.output_topic,
            starts={p: s.start for p, s in states.items()},
            ends={p: s.end for p, s in states.items()},
            to_time_ms=replay.to_time_ms,
        )
        if active:
            consumer.assign(active)
        last_message = time.monotonic()
        while not stop.requested and not all(s.done for s in states.values()):
            messages = consumer.consume(500, 0.5)
            if not messages and time.monotonic() - last_message > idle_timeout_s:
                pending = sorted(p for p, s in states.items() if not s.done)
                raise ReplayError(f"no message for {idle_timeout_s} s on partitions {pending}")
            batch: list[tuple[_PartitionState, InputMessage]] = []
            for raw in messages:
                p = raw.partition() or 0
                found = states.get(p)
                if found is None or found.done:
                    continue
                state = found
                error = raw.error()
                if error is not None:
                    if error.code() == KafkaError._PARTITION_EOF:
                        state.done = True  # end of this partition, the others go on
                        continue
                    if error.fatal():
                        raise ReplayError(str(error))
                    log.warning("consumer error", error=str(error))
                    continue
                last_message = time.monotonic()
                offset = raw.offset() or 0
                ts_kind, ts_ms = raw.timestamp()
                if (state.end is not None and offset >= state.end) or (
                    replay.to_time_ms is not None and ts_kind and ts_ms >= replay.to_time_ms
                ):
                    state.done = True
                    continue
                batch.append(
                    (
                        state,
                        InputMessage(
                            topic=topic,
                            partition=p,
                            offset=offset,
                            value=raw.value(),
                            key=raw.key(),
                            headers=message_headers(raw),
                            timestamp_ms=ts_ms if ts_kind else None,
                        ),
                    )
                )
                if state.end is not None and offset + 1 >= state.end:
                    state.done = True
            # History comes in big fetches: associate each fetch as one batch.
            results = processor.process_batch([message for _, message in batch]) if batch else []
            for (state, message), result in zip(batch, results, strict=True):
                if isinstance(result, Exception):  # alone again: retries or a dead letter
                    outputs = _process(processor, message, settings, log, counters, stop)
                else:
                    counters.ss_sources += result.counts["nAssociated"]
                    outputs = result.outputs
                for out in outputs:
                    produce(out)
                producer.poll(0)
                state.first = message.offset if state.first is None else state.first
                state.last = message.offset
                state.events += 1
                counters.events += 1
        remaining = producer.flush(settings.rebalance_timeout_s)
        if remaining or counters.failed_deliveries:
            raise ReplayError(
                f"{remaining} outputs undelivered, {len(counters.failed_deliveries)} failed: "
                f"{counters.failed_deliveries[:3]}"
            )
    finally:
        consumer.close()
    return {
        "events": counters.events,
        "ss_sources": counters.ss_sources,
        "dead_letters": counters.dead_letters,
        "stopped_early": stop.requested,
        "partitions": {p: {"first": s.first, "last": s.last, "events": s.events} for p, s in states.items()},
    }


def _process(
    processor: EventProcessor,
    message: InputMessage,
    settings: WorkerSettings,
    log: Any,
    counters: _Counters,
    stop: StopFlag,
) -> list[OutputMessage]:
    delay = settings.retry_initial_s
    while True:
        try:
            result = processor.process(message)
            counters.ss_sources += result.counts["nAssociated"]
            return result.outputs
        except TransientFault as exc:
            if stop.requested:
                raise ReplayError(f"stopped while retrying a transient fault: {exc}") from exc
            log.warning("transient fault; retrying", error=str(exc), retry_in_s=delay)
            time.sleep(delay)
            delay = min(delay * 2, settings.retry_max_s)
        except Exception as exc:
            error_class = classify(exc)
            counters.dead_letters += 1
            log.warning(
                "event dead-lettered",
                error_class=error_class,
                error=str(exc),
                partition=message.partition,
                offset=message.offset,
            )
            return [dead_letter_message(message, error_class, exc, settings.dead_letter_topic)]
