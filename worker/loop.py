"""The consume -> process -> produce -> commit loop of ``ssassoc worker``.

Checkpoints (the only places offsets are committed):

* ``exactly-once``: every window of events is one Kafka transaction; the input
  offsets go in with ``send_offsets_to_transaction`` and commit atomically
  with the outputs (and dead letters).
* ``at-least-once``: idempotent producer; flush, check every delivery report,
  then commit the offsets synchronously. A failed delivery rewinds the
  consumer to the start of the window (duplicates, never losses).

A window closes after ``commit_every_events`` events or ``commit_interval_s``,
on partition revoke (bounded by ``rebalance_timeout_s``) and on shutdown.
Lost partitions are dropped without a commit. Offsets only ever cover events
whose outputs were produced in the same window.
"""

from __future__ import annotations

import os
import re
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from types import FrameType
from typing import Any, cast

from confluent_kafka import (
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    Producer,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient

from .config import WorkerSettings
from .deadletter import (
    InputMessage,
    OutputMessage,
    classify,
    dead_letter_message,
    message_headers,
)
from .ephemeris import EphemerisProvider, open_provider, with_visit_cache
from .health import HealthState
from .logging import get_logger
from .processing import EventLimits, EventProcessor, EventResult, TransientFault

__all__ = ["StopFlag", "Worker", "build_worker", "consumer_config", "producer_config"]

TASK_NAME = "ssSingleFrameAssociation"

TP = tuple[str, int]
_Headers = list[tuple[str, str | bytes | None]]  # what confluent_kafka's produce() is typed to take


def consumer_config(settings: WorkerSettings, *, group_id: str | None = None) -> dict[str, Any]:
    conf = settings.common_kafka()
    conf.setdefault("auto.offset.reset", "earliest")
    # The broker answers a fetch as soon as data arrives or after this wait: keep it short so an
    # event is not held back (Tansu waits the full fetch.wait.max.ms, default 500 ms).
    conf.setdefault("fetch.wait.max.ms", 20)
    conf.setdefault("client.id", f"ssassoc-{settings.instance_id}")
    conf.update(
        {
            "group.id": group_id or settings.group_id,
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "isolation.level": "read_committed",
        }
    )
    return conf


# Consumer-only properties given through --kafka would make the producer warn on every start.
_CONSUMER_ONLY = re.compile(
    r"^(session\.timeout\.ms|heartbeat\.interval\.ms|max\.poll\.interval\.ms|auto\.offset\.reset"
    r"|partition\.assignment\.strategy|group\..*|fetch\..*|queued\..*|check\.crcs"
    r"|auto\.commit\.interval\.ms|allow\.auto\.create\.topics)$"
)


def producer_config(settings: WorkerSettings, *, transactional: bool) -> dict[str, Any]:
    conf = {k: v for k, v in settings.common_kafka().items() if not _CONSUMER_ONLY.match(k)}
    conf.setdefault("linger.ms", 2)
    # Delivery reports only for failures, the only ones the checkpoint logic needs: a report
    # per successful message is a Python callback per ssSource (~20 per event).
    conf.setdefault("delivery.report.only.error", True)
    conf.setdefault("client.id", f"ssassoc-{settings.instance_id}")
    conf["enable.idempotence"] = True
    if transactional:
        conf["transactional.id"] = settings.transactional_id
    return conf


class StopFlag:
    """SIGTERM/SIGINT: finish the event in hand, then stop. A second SIGINT exits at once."""

    def __init__(self) -> None:
        self.requested = False
        self._sigints = 0

    def request(self) -> None:
        self.requested = True

    def install(self) -> None:
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        if signum == signal.SIGINT:
            self._sigints += 1
            if self._sigints >= 2:
                os._exit(130)
        self.requested = True


@dataclass
class _Window:
    """Events processed since the last checkpoint."""

    start: dict[TP, int] = field(default_factory=dict)  # first offset per partition
    next: dict[TP, int] = field(default_factory=dict)  # offset to commit per partition
    events: int = 0
    opened_at: float = field(default_factory=time.monotonic)
    in_transaction: bool = False
    failed_deliveries: list[str] = field(default_factory=list)

    def add(self, tp: TP, offset: int) -> None:
        self.start.setdefault(tp, offset)
        self.next[tp] = offset + 1
        self.events += 1


class Worker:
    """One worker process: a consumer in the group and a (transactional) producer."""

    def __init__(
        self,
        settings: WorkerSettings,
        processor: EventProcessor,
        log: Any,
        *,
        health: HealthState | None = None,
        stop: StopFlag | None = None,
        on_event: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        self.settings = settings
        self.processor = processor
        self.log = log.bind(group_id=settings.group_id, input_topic=settings.input_topic)
        self.health = health or HealthState(settings.liveness_timeout_s, settings.heartbeat_file)
        self.stop = stop or StopFlag()
        self.on_event = on_event
        self.exactly_once = settings.processing_guarantee == "exactly-once"
        self.window = _Window()
        self.assigned: set[TP] = set()
        self._consumer: Consumer | None = None
        self._producer: Producer | None = None
        self._summary_at = time.monotonic()
        self._summary_events = 0
        self._summary_checkpoints = 0
        self._summary_checkpoint_s = 0.0  # time spent committing: the loop processes nothing meanwhile
        self._summary_checkpoint_max_s = 0.0
        self._abandon: set[TP] = set()
        # Several events per association call when the processor can and the settings allow.
        self._process_batch: Callable[[list[InputMessage]], list[EventResult | Exception]] | None = (
            getattr(processor, "process_batch", None) if settings.process_batch_size > 1 else None
        )

    # -- set-up ---------------------------------------------------------------------------
    @property
    def consumer(self) -> Consumer:
        assert self._consumer is not None
        return self._consumer

    @property
    def producer(self) -> Producer:
        assert self._producer is not None
        return self._producer

    def _wait_for_topics(self) -> bool:
        """Wait (bounded backoff, until stopped) for the broker and every topic to exist."""
        admin = AdminClient(self.settings.common_kafka())
        needed = {self.settings.input_topic, self.settings.output_topic, self.settings.dead_letter_topic}
        if self.settings.unassociated_topic:
            needed.add(self.settings.unassociated_topic)
        delay = self.settings.retry_initial_s
        while not self.stop.requested:
            self.health.beat()
            try:
                metadata = admin.list_topics(timeout=5)
                missing = sorted(needed - set(metadata.topics))
                if not missing:
                    return True
                self.log.warning("waiting for topics", missing=missing, retry_in_s=delay)
            except KafkaException as exc:
                self.log.warning("broker unreachable", error=str(exc), retry_in_s=delay)
            self._sleep(delay)
            delay = min(delay * 2, self.settings.retry_max_s)
        return False

    def _sleep(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while not self.stop.requested and time.monotonic() < end:
            time.sleep(min(0.1, end - time.monotonic()))
            self.health.beat()

    # -- rebalance callbacks (run inside consume()) ---------------------------------------
    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self.assigned |= {(p.topic, p.partition) for p in partitions}
        self.health.ready = True
        self.log.info("partitions assigned", partitions=sorted(p.partition for p in partitions))

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        revoked = {(p.topic, p.partition) for p in partitions}
        self.log.info("partitions revoked", partitions=sorted(p for _, p in revoked))
        self.checkpoint(reason="revoke", timeout_s=self.settings.rebalance_timeout_s)
        self.assigned -= revoked

    def _on_lost(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        lost = {(p.topic, p.partition) for p in partitions}
        self.log.warning("partitions lost; dropping uncommitted work", partitions=sorted(p for _, p in lost))
        if self.exactly_once and self.window.in_transaction:
            self._abort_and_rewind(keep=self.assigned - lost)
        else:
            for tp in lost:
                self.window.start.pop(tp, None)
                self.window.next.pop(tp, None)
        self.assigned -= lost

    # -- producing ------------------------------------------------------------------------
    def _delivery(self, err: KafkaError | None, msg: Message) -> None:
        # The producer's one callback; with delivery.report.only.error it runs for failures only.
        if err is not None:
            self.window.failed_deliveries.append(f"{msg.topic()}: {err}")

    def _produce_all(self, outputs: list[OutputMessage]) -> None:
        produce = self.producer.produce
        for out in outputs:
            while True:
                try:
                    # No per-message callback: the producer-level on_delivery (see
                    # producer_config) reports failures; headers are already (str, bytes) pairs.
                    produce(out.topic, out.value, out.key, headers=cast(_Headers, out.headers))
                    break
                except BufferError:
                    # Local queue full (broker slow or down): serve callbacks and retry.
                    self.producer.poll(0.1)
                    self.health.beat()

    def _begin(self) -> None:
        if self.exactly_once and not self.window.in_transaction:
            self._retry_kafka(self.producer.begin_transaction, "begin transaction")
            self.window.in_transaction = True

    # -- checkpoint -----------------------------------------------------------------------
    def checkpoint(self, reason: str, timeout_s: float | None = None) -> bool:
        """Make the window's outputs durable, then commit its offsets. False = rewound."""
        window = self.window
        if window.events == 0 and not window.in_transaction:
            return True
        timeout_s = timeout_s if timeout_s is not None else self.settings.rebalance_timeout_s
        started = time.perf_counter()
        offsets = [TopicPartition(t, p, o) for (t, p), o in sorted(window.next.items())]
        ok = self._commit_transaction(offsets, timeout_s) if self.exactly_once else \
            self._flush_and_commit(offsets, timeout_s)
        duration_s = time.perf_counter() - started
        self.health.inc("checkpoint_seconds_total", duration_s)
        self._summary_checkpoints += 1
        self._summary_checkpoint_s += duration_s
        self._summary_checkpoint_max_s = max(self._summary_checkpoint_max_s, duration_s)
        if ok:
            self.health.inc("commits_total")
            self.log.debug(
                "checkpoint", reason=reason, events=window.events,
                offsets={f"{o.topic}/{o.partition}": o.offset for o in offsets},
                duration_ms=round(duration_s * 1e3, 3),
            )
            self.window = _Window()
        return ok

    def _commit_transaction(self, offsets: list[TopicPartition], timeout_s: float) -> bool:
        if not self.window.in_transaction:
            return True
        try:
            if offsets:
                metadata = self.consumer.consumer_group_metadata()
                self._retry_kafka(
                    lambda: self.producer.send_offsets_to_transaction(offsets, metadata, timeout_s),
                    "send offsets to transaction",
                )
            self._retry_kafka(lambda: self.producer.commit_transaction(timeout_s), "commit transaction")
            return True
        except KafkaException as exc:
            error: KafkaError = exc.args[0]
            if error.txn_requires_abort():
                self.log.warning("transaction aborted; rewinding", error=str(error))
                self._abort_and_rewind(keep=self.assigned)
                return False
            raise

    def _flush_and_commit(self, offsets: list[TopicPartition], timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        while len(self.producer) > 0:
            self.producer.flush(min(1.0, max(0.0, deadline - time.monotonic())))
            self.health.beat()
            if time.monotonic() > deadline and len(self.producer) > 0:
                # Outputs not confirmed: do not commit; resend the window.
                self.log.warning("flush timed out; rewinding", undelivered=len(self.producer))
                self._rewind(keep=self.assigned)
                return False
        if self.window.failed_deliveries:
            self.log.warning("deliveries failed; rewinding", errors=self.window.failed_deliveries[:5])
            self._rewind(keep=self.assigned)
            return False
        if not offsets:
            return True
        delay = self.settings.retry_initial_s
        while True:
            try:
                self.consumer.commit(offsets=offsets, asynchronous=False)
                return True
            except KafkaException as exc:
                error = exc.args[0]
                if error.retriable() and time.monotonic() < deadline:
                    self.log.warning("commit failed; retrying", error=str(error))
                    self._sleep(delay)
                    delay = min(delay * 2, self.settings.retry_max_s)
                    continue
                # Group rebalanced under us: the new owner reprocesses (at-least-once).
                self.log.warning("commit failed; offsets left to the next owner", error=str(error))
                self.window = _Window()
                return False

    def _abort_and_rewind(self, keep: set[TP]) -> None:
        try:
            self.producer.abort_transaction(self.settings.rebalance_timeout_s)
        except KafkaException as exc:
            self.log.error("abort failed", error=str(exc))
            raise
        self._rewind(keep)

    def _rewind(self, keep: set[TP]) -> None:
        """Seek still-owned partitions back to the window start; forget the window."""
        for tp, offset in self.window.start.items():
            if tp in keep:
                self.consumer.seek(TopicPartition(tp[0], tp[1], offset))
        self._abandon |= set(self.window.start)
        self.window = _Window()

    def _retry_kafka(self, action: Callable[[], Any], what: str) -> Any:
        delay = self.settings.retry_initial_s
        while True:
            try:
                return action()
            except KafkaException as exc:
                error: KafkaError = exc.args[0]
                if not error.retriable() or error.fatal() or error.txn_requires_abort():
                    raise
                self.log.warning(f"{what} failed; retrying", error=str(error), retry_in_s=delay)
                self._sleep(delay)
                delay = min(delay * 2, self.settings.retry_max_s)

    # -- one event ------------------------------------------------------------------------
    def _process_with_retry(self, message: InputMessage) -> Any:
        """Process; transient faults retried with bounded backoff while the partition is ours."""
        delay = self.settings.retry_initial_s
        tp = (message.topic, message.partition)
        while True:
            try:
                return self.processor.process(message)
            except TransientFault as exc:
                self.health.inc("transient_retries_total")
                self.log.warning("transient fault; retrying", error=str(exc), retry_in_s=delay,
                                 partition=message.partition, offset=message.offset)
            # Keep group membership alive while waiting; rebalances may run here.
            partitions = [TopicPartition(t, p) for t, p in self.assigned]
            self.consumer.pause(partitions)
            end = time.monotonic() + delay
            while time.monotonic() < end and not self.stop.requested:
                self.consumer.poll(0.1)
                self.health.beat()
            self.consumer.resume([TopicPartition(t, p) for t, p in self.assigned])
            if self.stop.requested or tp not in self.assigned:
                return None  # not committed: processed again after restart / by the new owner
            delay = min(delay * 2, self.settings.retry_max_s)

    @staticmethod
    def _input(raw: Message) -> InputMessage:
        kind, timestamp = raw.timestamp()
        return InputMessage(
            topic=raw.topic() or "",
            partition=raw.partition() or 0,
            offset=raw.offset() or 0,
            value=raw.value(),
            key=raw.key(),
            headers=message_headers(raw),
            timestamp_ms=timestamp if kind else None,
        )

    def handle(self, raw: Message, message: InputMessage | None = None) -> bool:
        """Process one message; False if it was left unprocessed (to be read again)."""
        started = time.perf_counter()
        if message is None:
            message = self._input(raw)
        tp = (message.topic, message.partition)
        try:
            result = self._process_with_retry(message)
            if result is None:
                self.consumer.seek(TopicPartition(message.topic, message.partition, message.offset))
                self._abandon.add(tp)
                return False
        except Exception as exc:  # any bad event becomes a dead letter, the stream goes on
            error_class = classify(exc)
            self.health.inc_labelled("dead_letters_total", "error_class", error_class)
            level = self.log.error if error_class == "internal_error" else self.log.warning
            level("event dead-lettered", topic=message.topic, partition=message.partition,
                  offset=message.offset, error_class=error_class, error=str(exc),
                  error_type=type(exc).__name__, exc_info=error_class == "internal_error")
            self._begin()
            self._produce_all([dead_letter_message(message, error_class, exc, self.settings.dead_letter_topic)])
            self.window.add(tp, message.offset)
            self._summary_events += 1
            self.health.inc("events_total")
            return True
        self._finish(message, result, (time.perf_counter() - started) * 1e3)
        return True

    def _finish(self, message: InputMessage, result: EventResult, processing_ms: float) -> None:
        """Produce a processed event's outputs, add it to the window, log its task metadata."""
        produce_start = time.perf_counter()
        self._begin()  # after processing: a rebalance while retrying may have ended the last one
        self._produce_all(result.outputs)
        produce_ms = (time.perf_counter() - produce_start) * 1e3
        self.window.add((message.topic, message.partition), message.offset)
        self._summary_events += 1
        timings = result.timings_ms
        timings["produceMs"] = produce_ms
        timings["totalMs"] = processing_ms + produce_ms
        self.health.add_event(result.counts["nAssociated"], timings)
        event = {
            "task": TASK_NAME,
            "visit": result.visit,
            "detector": result.detector,
            "band": result.band,
            **result.counts,
            **{k: round(v, 3) for k, v in timings.items()},
        }
        # Where the event came from as arguments: binding a logger per event costs a logger
        # object and a dict copy.
        self.log.info("event processed", topic=message.topic, partition=message.partition,
                      offset=message.offset, **event, taskMetadata=result.task_metadata)
        if self.on_event is not None:
            self.on_event(event)

    def handle_batch(self, raws: list[Message]) -> None:
        """Process messages together (one association for all, :meth:`EventProcessor.process_batch`),
        then finish them in order; an event the batch could not process goes alone through
        :meth:`handle` (retries, dead letters). Events of a partition abandoned or revoked
        meanwhile are dropped: their offsets come again."""
        if len(raws) == 1 or self._process_batch is None:
            for raw in raws:
                if self._still_ours(raw):
                    self.handle(raw)
            return
        started = time.perf_counter()
        messages = [self._input(raw) for raw in raws]
        try:
            outcomes: list[EventResult | Exception] = self._process_batch(messages)
        except Exception as exc:  # the batch as a whole failed (a bug): each event alone, to its fate
            self.log.warning("batch processing failed; processing its events one by one",
                             error=str(exc), error_type=type(exc).__name__, events=len(messages))
            outcomes = [exc] * len(messages)
        share_ms = (time.perf_counter() - started) * 1e3 / len(messages)  # each event's part of the batch
        for raw, message, outcome in zip(raws, messages, outcomes, strict=True):
            if not self._still_ours(raw):
                continue
            if isinstance(outcome, Exception):
                self.handle(raw, message)
            else:
                self._finish(message, outcome, share_ms)

    def _still_ours(self, raw: Message) -> bool:
        tp = (raw.topic() or "", raw.partition() or 0)
        return tp not in self._abandon and tp in self.assigned

    # -- the loop -------------------------------------------------------------------------
    def _summary(self) -> None:
        now = time.monotonic()
        elapsed = now - self._summary_at
        lag: dict[str, int] = {}
        if self.assigned:
            try:
                positions = self.consumer.position([TopicPartition(t, p) for t, p in self.assigned])
                for tp in positions:
                    _, high = self.consumer.get_watermark_offsets(tp, cached=True)
                    if high >= 0 and tp.offset >= 0:
                        lag[f"{tp.topic}/{tp.partition}"] = max(0, high - tp.offset)
            except KafkaException:
                pass
        total_lag = sum(lag.values())
        self.health.set_gauge("consumer_lag_messages", total_lag)
        self.log.info(
            "throughput", events=self._summary_events,
            events_per_s=round(self._summary_events / elapsed, 2) if elapsed > 0 else 0.0,
            lag=lag, total_lag=total_lag, partitions=len(self.assigned),
            checkpoints=self._summary_checkpoints, checkpoint_s=round(self._summary_checkpoint_s, 4),
            checkpoint_max_ms=round(self._summary_checkpoint_max_s * 1e3, 2),
        )
        self._summary_at = now
        self._summary_events = 0
        self._summary_checkpoints = 0
        self._summary_checkpoint_s = 0.0
        self._summary_checkpoint_max_s = 0.0

    def _next_batch(self) -> list[Message]:
        """Wait for one message, then take what is already fetched (up to ``batch_size``).

        ``consume(n, timeout)`` alone waits for all ``n`` or the whole timeout, which
        would add up to ``poll_timeout_s`` of latency to every event at low rates.
        """
        first = self.consumer.poll(self.settings.poll_timeout_s)
        if first is None:
            return []
        if self.settings.batch_size == 1:
            return [first]
        return [first, *self.consumer.consume(self.settings.batch_size - 1, 0)]

    def _due(self) -> bool:
        window = self.window
        if window.events == 0:
            return False
        return (
            window.events >= self.settings.commit_every_events
            or time.monotonic() - window.opened_at >= self.settings.commit_interval_s
        )

    def run(self) -> int:
        """Run until stopped; returns the process exit status."""
        s = self.settings
        self.log.info("worker starting", settings=s.safe_dump())
        if not self._wait_for_topics():
            return 0
        self._consumer = Consumer(consumer_config(s))
        self._producer = Producer(
            {**producer_config(s, transactional=self.exactly_once), "on_delivery": self._delivery}
        )
        try:
            if self.exactly_once:
                self._retry_kafka(lambda: self.producer.init_transactions(s.rebalance_timeout_s),
                                  "init transactions")
            self.consumer.subscribe(
                [s.input_topic], on_assign=self._on_assign, on_revoke=self._on_revoke,
                on_lost=self._on_lost,
            )
            while not self.stop.requested:
                self.health.beat()
                messages = self._next_batch()
                self._abandon.clear()
                chunk: list[Message] = []
                for i, raw in enumerate(messages):
                    error = raw.error()
                    if error is not None:
                        self._consumer_error(error)
                    elif self._still_ours(raw):  # else rewound or revoked: these offsets come again
                        chunk.append(raw)
                    if len(chunk) < s.process_batch_size and i + 1 < len(messages):
                        continue
                    if self.stop.requested:
                        break  # not processed, not committed: read again after restart
                    if chunk:
                        self.handle_batch(chunk)
                        chunk = []
                    if self._due():
                        self.checkpoint(reason="interval")
                self.producer.poll(0)  # serve delivery reports (failures only)
                if self._due() or (s.commit_interval_s == 0 and self.window.events):
                    self.checkpoint(reason="interval")
                if time.monotonic() - self._summary_at >= s.summary_interval_s:
                    self._summary()
            self.log.info("stopping: committing the work in hand")
            self.checkpoint(reason="shutdown", timeout_s=s.rebalance_timeout_s)
            self._summary()
            return 0
        finally:
            self.health.ready = False
            try:
                self.consumer.close()  # leaves the group (revoke -> empty window, nothing to do)
            finally:
                remaining = self.producer.flush(s.rebalance_timeout_s)
                if remaining:
                    self.log.error("producer closed with undelivered messages", count=remaining)
                self.log.info("worker stopped")

    def _consumer_error(self, error: KafkaError) -> None:
        if error.code() == KafkaError._PARTITION_EOF:
            return
        if error.fatal():
            raise KafkaException(error)
        self.health.inc("consumer_errors_total")
        self.log.warning("consumer error", error=str(error), retriable=error.retriable())


def processor_from_settings(settings: WorkerSettings, provider: EphemerisProvider | None = None) -> EventProcessor:
    """The event processor the settings describe (opening the ephemeris store unless given one)."""
    if provider is None:
        if settings.ephemeris_store is None:
            raise ValueError("no ephemeris store: set --ephemeris-store / SSASSOC_EPHEMERIS_STORE")
        provider = open_provider(settings.ephemeris_store)
    provider = with_visit_cache(
        provider, settings.ephemeris_visit_cache_radius_deg, settings.ephemeris_visit_cache_entries
    )
    return EventProcessor(
        provider,
        output_topic=settings.output_topic,
        unassociated_topic=settings.unassociated_topic,
        limits=EventLimits(settings.max_event_bytes, settings.max_sources),
        max_dist_arcsec=settings.max_dist_arcsec,
    )


def build_worker(
    settings: WorkerSettings,
    provider: EphemerisProvider | None = None,
    *,
    log: Any = None,
    stop: StopFlag | None = None,
) -> Worker:
    """Wire a worker from settings: the ephemeris provider, the processor, the loop."""
    processor = processor_from_settings(settings, provider)
    processor.warm_up()  # also takes the start-up heap out of the garbage collector's scans
    return Worker(settings, processor, log or get_logger(), stop=stop)
