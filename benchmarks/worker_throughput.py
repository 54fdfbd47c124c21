"""Throughput and latency of one ``ssassoc worker`` process through the local broker.

    .venv/bin/python benchmarks/worker_throughput.py [--events 3000] [--rate 50] [--seconds 20]

Realistic detector events (~500 sources, ~20 predicted objects, 4072x4000 px
TAN WCS, ~28 KB) go through a local Tansu broker (memory storage, loopback).
Measured in the same run:

* baseline: the broker's raw produce+consume rate for these events (one
  process, no work) and the decode cost of three source layouts;
* saturated throughput of one worker process (events/s) over a pre-filled topic;
* latency at a fixed input rate: event produced -> ssSource produced (the
  Kafka CreateTime of each), p50/p99, and -> visible to a read_committed
  reader (adds the transaction commit interval), plus the per-stage breakdown
  from the worker's own task-metadata log events;
* the worker's resident memory (peak of samples).

The ephemeris stage is the fixed-table provider (a cone search over the
union of the events' predicted objects), not the 1.3-million-object store;
the store has its own benchmark.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import fastavro
import numpy as np
import psutil
from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition

from ssassoc.worker import wire
from ssassoc.worker.broker import LocalBroker, create_topics
from ssassoc.worker.sample_events import SampleStream, sample_stream


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q)) if values else float("nan")


# -- baselines ---------------------------------------------------------------------------


def decode_layouts(n_sources: int = 500, repeat: int = 300) -> dict[str, float]:
    """ms to decode the sources of one event in three Avro layouts (fastavro, schemaless)."""
    rng = np.random.default_rng(0)
    names_f8 = ["ra", "dec"]
    names_f4 = ["raErr", "decErr", "x", "y", "psfFlux", "psfFluxErr", "snr", "extendedness"]
    cols: dict[str, Any] = {"diaSourceId": rng.integers(0, 2**62, n_sources)}
    cols.update({n: rng.random(n_sources) for n in names_f8})
    cols.update({n: rng.random(n_sources).astype(np.float32) for n in names_f4})
    fields = [("diaSourceId", "long")] + [(n, "double") for n in names_f8] + [(n, "float") for n in names_f4]
    records_schema = fastavro.parse_schema({"type": "array", "items": {
        "type": "record", "name": "s", "fields": [{"name": n, "type": t} for n, t in fields]}})
    columns_schema = fastavro.parse_schema({"type": "record", "name": "c", "fields": [
        {"name": n, "type": {"type": "array", "items": t}} for n, t in fields]})
    packed_schema = fastavro.parse_schema({"type": "record", "name": "p", "fields": [
        {"name": n, "type": "bytes"} for n, _ in fields]})
    rows = [{n: cols[n][i].item() for n, _ in fields} for i in range(n_sources)]
    as_columns = {n: cols[n].tolist() for n, _ in fields}
    dtypes = {n: ("<i8" if t == "long" else "<f8" if t == "double" else "<f4") for n, t in fields}
    packed = {n: np.asarray(cols[n], dtype=dtypes[n]).tobytes() for n, _ in fields}

    def encoded(schema: Any, value: Any) -> bytes:
        out = io.BytesIO()
        fastavro.schemaless_writer(out, schema, value)
        return out.getvalue()

    blobs = {
        "array_of_records": (records_schema, encoded(records_schema, rows), None),
        "array_per_column": (columns_schema, encoded(columns_schema, as_columns),
                             lambda v: {n: np.asarray(v[n]) for n, _ in fields}),
        "packed_column_bytes": (packed_schema, encoded(packed_schema, packed),
                                lambda v: {n: np.frombuffer(v[n], dtypes[n]) for n, _ in fields}),
    }
    result = {}
    for name, (schema, blob, to_numpy) in blobs.items():
        start = time.perf_counter()
        for _ in range(repeat):
            value = fastavro.schemaless_reader(io.BytesIO(blob), schema, None)
            if to_numpy is not None:
                to_numpy(value)
        result[name] = (time.perf_counter() - start) / repeat * 1e3
    return result


def broker_raw_rate(bootstrap: str, values: list[bytes], n: int) -> float:
    """events/s through the broker, produced and consumed by one process, no work."""
    topic = f"raw-{uuid.uuid4().hex[:8]}"
    create_topics(bootstrap, [topic])
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "raw", "enable.auto.commit": False,
                         "enable.partition.eof": True})
    start = time.perf_counter()
    for i in range(n):
        while True:
            try:
                producer.produce(topic, values[i % len(values)])
                break
            except BufferError:
                producer.poll(0.05)
    producer.flush(60)
    consumer.assign([TopicPartition(topic, 0, 0)])
    got = 0
    while got < n:
        for msg in consumer.consume(1000, 1.0):
            if not msg.error():
                got += 1
    elapsed = time.perf_counter() - start
    consumer.close()
    return n / elapsed


# -- the worker ------------------------------------------------------------------------------


class Worker:
    def __init__(self, bootstrap: str, topics: dict[str, str], store: Path, log: Path, *extra: str):
        self.log_path = log
        self._log = open(log, "wb")  # noqa: SIM115
        args = [sys.executable, "-m", "ssassoc.worker", "worker", "--bootstrap-servers", bootstrap,
                "--input-topic", topics["in"], "--output-topic", topics["out"],
                "--dead-letter-topic", topics["dlq"], "--group-id", topics["group"],
                "--ephemeris-store", str(store), "--log-format", "json",
                "--kafka", "session.timeout.ms=6000", "--summary-interval-s", "5", *extra]
        self.process = subprocess.Popen(args, stdout=self._log, stderr=subprocess.STDOUT)
        self.ps = psutil.Process(self.process.pid)
        self.peak_rss = 0
        self._sampling = True
        self._sampler = threading.Thread(target=self._sample, daemon=True)
        self._sampler.start()

    def _sample(self) -> None:
        while self._sampling:
            try:
                self.peak_rss = max(self.peak_rss, self.ps.memory_info().rss)
            except psutil.Error:
                return
            time.sleep(0.2)

    def events(self) -> list[dict[str, Any]]:
        out = []
        for line in self.log_path.read_text().splitlines():
            if line.startswith("{"):
                with contextlib.suppress(json.JSONDecodeError):
                    out.append(json.loads(line))
        return [e for e in out if e.get("event") == "event processed"]

    def wait_assigned(self, timeout_s: float = 60) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if "partitions assigned" in self.log_path.read_text():
                return
            time.sleep(0.1)
        raise RuntimeError("worker never got partitions:\n" + self.log_path.read_text()[-2000:])

    def stop(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(60)
        self._sampling = False
        self._log.close()
        return code


def make_topics(bootstrap: str) -> dict[str, str]:
    tag = uuid.uuid4().hex[:8]
    topics = {"in": f"in-{tag}", "out": f"out-{tag}", "dlq": f"dlq-{tag}", "group": f"g-{tag}"}
    create_topics(bootstrap, [topics["in"], topics["out"], topics["dlq"]])
    return topics


def produce_all(bootstrap: str, topic: str, stream: SampleStream, n: int) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5, "enable.idempotence": True})
    for i in range(n):
        event = stream.events[i % len(stream.events)]
        while True:
            try:
                producer.produce(topic, event.value, key=event.key)
                break
            except BufferError:
                producer.poll(0.05)
    producer.flush(60)


def throughput(bootstrap: str, stream: SampleStream, store: Path, n: int, workdir: Path,
               guarantee: str) -> dict[str, Any]:
    topics = make_topics(bootstrap)
    produce_all(bootstrap, topics["in"], stream, n)
    worker = Worker(bootstrap, topics, store, workdir / f"throughput-{guarantee}.log",
                    "--processing-guarantee", guarantee)
    deadline = time.monotonic() + 600
    while len(worker.events()) < n and time.monotonic() < deadline:
        time.sleep(0.5)
    events = worker.events()
    code = worker.stop()
    stamps = [time.mktime(time.strptime(e["timestamp"][:19], "%Y-%m-%dT%H:%M:%S"))
              + float("0." + e["timestamp"][20:26]) for e in events]
    # Skip the first 5 % (group join, cold caches) for the steady rate.
    skip = len(stamps) // 20
    rate = (len(stamps) - skip - 1) / (stamps[-1] - stamps[skip]) if len(stamps) > skip + 1 else 0.0
    return {"guarantee": guarantee, "events": len(events), "events_per_s": round(rate, 1),
            "peak_rss_mb": round(worker.peak_rss / 2**20, 1), "exit_code": code,
            "stage_ms_p50": {k: round(pct([e[k] for e in events], 50), 3) for k in STAGES}}


STAGES = ("decodeMs", "ephemerisQueryMs", "associationMs", "encodeMs", "produceMs", "totalMs")


def latency(bootstrap: str, stream: SampleStream, store: Path, rate: float, seconds: float,
            workdir: Path) -> dict[str, Any]:
    topics = make_topics(bootstrap)
    worker = Worker(bootstrap, topics, store, workdir / "latency.log", "--commit-interval-s", "0.1")
    worker.wait_assigned()
    reader = Consumer({"bootstrap.servers": bootstrap, "group.id": f"lat-{uuid.uuid4().hex[:6]}",
                       "isolation.level": "read_committed", "enable.auto.commit": False,
                       "fetch.wait.max.ms": 5})
    reader.assign([TopicPartition(topics["out"], 0, 0)])
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 0, "enable.idempotence": True})
    # Warm the input producer up (metadata, producer id) so its start is not counted as latency.
    producer.produce(topics["dlq"], b"warm-up")
    producer.flush(10)
    n = int(rate * seconds)
    sent_ms: dict[str, int] = {}
    produced: list[Any] = []
    visible: list[Any] = []
    start = time.perf_counter()
    done_inputs: set[str] = set()
    for i in range(n):
        target = start + i / rate
        while time.perf_counter() < target:
            for msg in reader.consume(100, max(0.0, min(0.002, target - time.perf_counter()))):
                _collect(msg, sent_ms, produced, visible, done_inputs)
        event = stream.events[i % len(stream.events)]
        producer.produce(topics["in"], event.value, key=event.key,
                         on_delivery=lambda err, m: sent_ms.__setitem__(f"{m.partition()}/{m.offset()}",
                                                                       m.timestamp()[1]))
        producer.poll(0)
    producer.flush(10)
    deadline = time.monotonic() + 30
    while len(done_inputs) < n and time.monotonic() < deadline:
        for msg in reader.consume(100, 0.1):
            _collect(msg, sent_ms, produced, visible, done_inputs)
    reader.close()
    events = worker.events()
    worker.stop()
    # Samples in input order; the first second (fetch sessions warming up) is reported apart.
    order = {origin: ms for origin, ms in sent_ms.items()}
    t_first = min(order.values())
    prod = [(order[o] - t_first, ts - order[o]) for o, ts in produced if o in order]
    vis = [(order[o] - t_first, ts - order[o]) for o, ts in visible if o in order]
    produced = [lat for _, lat in prod]
    visible = [lat for _, lat in vis]
    steady = [lat for at, lat in prod if at >= 1000]
    worst = sorted(prod, key=lambda p: -p[1])[:5]
    return {
        "produced_to_sssource_produced_ms_after_first_second": {
            "p50": round(pct(steady, 50), 2), "p99": round(pct(steady, 99), 2), "max": max(steady)},
        "worst_samples_at_ms_after_start": [(int(a), round(lat, 1)) for a, lat in worst],
        "rate_events_per_s": rate, "events": n, "events_with_output": len(done_inputs),
        "produced_to_sssource_produced_ms": {"p50": round(pct(produced, 50), 2),
                                             "p99": round(pct(produced, 99), 2)},
        "produced_to_sssource_visible_ms": {"p50": round(pct(visible, 50), 2),
                                            "p99": round(pct(visible, 99), 2)},
        "stage_ms": {k: {"p50": round(pct([e[k] for e in events], 50), 3),
                         "p99": round(pct([e[k] for e in events], 99), 3)} for k in STAGES},
        "peak_rss_mb": round(worker.peak_rss / 2**20, 1),
    }


def _collect(msg: Any, sent_ms: dict[str, int], produced: list[float], visible: list[float],
             done: set[str]) -> None:
    if msg.error():
        if msg.error().code() != KafkaError._PARTITION_EOF:
            print("reader error", msg.error(), file=sys.stderr)
        return
    origin = dict(msg.headers() or [])["ssassoc.input"].decode().split("/", 1)[1]
    if origin in done:
        return  # one latency sample per input event (its first ssSource)
    done.add(origin)
    # The input's own CreateTime comes from its delivery report, served later: resolve at the end.
    produced.append((origin, msg.timestamp()[1]))
    visible.append((origin, time.time() * 1e3))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=3000, help="events for the throughput run")
    parser.add_argument("--distinct", type=int, default=200, help="distinct events generated")
    parser.add_argument("--rate", type=float, default=50.0, help="input rate of the latency run")
    parser.add_argument("--seconds", type=float, default=20.0, help="duration of the latency run")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--only-latency", action="store_true", help="skip baselines and throughput")
    args = parser.parse_args()

    print(f"generating {args.distinct} distinct events...", flush=True)
    stream = sample_stream(args.distinct, n_sources=500, n_objects=20, seed=3)
    sizes = [len(e.value) for e in stream.events]
    results: dict[str, Any] = {
        "event_bytes_mean": round(statistics.mean(sizes)),
        "sources_per_event": 500,
        "predicted_objects_per_event": 20,
        "cpu_count": os.cpu_count(),
        "load_average_at_start": os.getloadavg(),
    }
    results["decode_ms_500_sources"] = {k: round(v, 4) for k, v in decode_layouts().items()}
    framed = stream.events[0].value
    t0 = time.perf_counter()
    for _ in range(300):
        wire.decode("visitEvent", framed)
    results["decode_ms_visit_event_as_shipped"] = round((time.perf_counter() - t0) / 300 * 1e3, 4)
    print(json.dumps(results, indent=2), flush=True)

    with tempfile.TemporaryDirectory() as tmp, LocalBroker().start() as broker:
        workdir = Path(tmp)
        store = workdir / "objects.csv"
        stream.provider().to_csv(store)
        if args.only_latency:
            lat = latency(broker.bootstrap, stream, store, args.rate, args.seconds, workdir)
            print(json.dumps(lat, indent=2))
            return 0
        results["broker_raw_produce_consume_events_per_s"] = round(
            broker_raw_rate(broker.bootstrap, [e.value for e in stream.events], args.events), 1)
        print("raw broker:", results["broker_raw_produce_consume_events_per_s"], "events/s", flush=True)
        for guarantee in ("exactly-once", "at-least-once"):
            results[f"throughput_{guarantee}"] = throughput(
                broker.bootstrap, stream, store, args.events, workdir, guarantee)
            print(json.dumps(results[f"throughput_{guarantee}"], indent=2), flush=True)
        results["latency"] = latency(broker.bootstrap, stream, store, args.rate, args.seconds, workdir)
        print(json.dumps(results["latency"], indent=2), flush=True)
    raw = results["broker_raw_produce_consume_events_per_s"]
    best = results["throughput_exactly-once"]["events_per_s"]
    results["worker_vs_raw_broker"] = round(best / raw, 3) if raw else None
    print(json.dumps({k: results[k] for k in ("worker_vs_raw_broker",)}, indent=2))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
