"""A realistic night, end to end, on this machine: the main job on embedded defaults.

1. start the local broker (Tansu, loopback, memory storage) and create the topics;
2. build an ephemeris store for the night at Rubin (X05) from a SYNTHETIC orbit
   population (clearly labelled: realistic classes and element/H distributions,
   not the MPC catalogue), with a progress bar;
3. simulate the night: fields along and off the ecliptic, each visited twice;
   per detector of a labelled subset of the 189-detector focal plane, the true
   positions of the objects on it (exact N-body ephemerides, independent of the
   store's fits) with astrometric noise, missed faint detections and many
   unrelated sources; publish them as visit events;
4. run the worker as the long-running process it is (``ssassoc worker``);
5. when every event is processed: a summary (events, predicted, associated,
   completeness and purity against the truth, throughput, latency percentiles),
   plots (PNG), clean shutdown, and where the outputs are.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ssassoc.core.ephemeris.build import build_store
from ssassoc.core.ephemeris.nbody import observe
from ssassoc.core.ephemeris.population import generate_population
from ssassoc.core.ephemeris.store import EphemerisStore
from ssassoc.core.focal_plane import rubin_like_focal_plane
from ssassoc.core.simulation import night_pointings, offset_positions, simulate_detector

from . import wire
from .broker import LocalBroker, create_topics
from .events import make_visit_event

__all__ = ["NightConfig", "run_night"]

CENTRAL_RAFT = (84, 85, 86, 93, 94, 95, 102, 103, 104)


@dataclass
class NightConfig:
    """Size of the simulated night (defaults: a few minutes on 2 cores)."""

    out_dir: Path = Path("out/night")
    n_objects: int = 500_000
    """Synthetic orbits in the catalogue (all classes; see ``ephemeris.population``)."""
    n_fields: int = 8
    """Fields observed; each is visited twice ~33 min apart."""
    detectors: tuple[int, ...] = tuple(range(189))
    """Detectors simulated per visit (default: all 189; ``CENTRAL_RAFT`` is 9 of them)."""
    n_field_sources: int = 400
    """Unrelated sources (stars, transients, artefacts) per detector."""
    orbit_error_arcsec: float = 0.3
    """1-sigma along-track error of the catalogue orbits (cross-track: a sixth of it); 3 % of
    the objects have errors ten times larger. The truth sky is displaced by it, the store not."""
    visit_interval_s: float = 1.0
    """Seconds between published visits (Rubin: ~34 s; the demo runs a time-lapse)."""
    start_mjd_tai: float = 60810.05
    seed: int = 1
    workers: int = 2
    timeout_s: float = 900.0
    keep_going: bool = False
    topics: dict[str, str] = field(
        default_factory=lambda: {
            "input": "visit-events",
            "output": "ss-sources",
            "unassociated": "ss-unassociated",
            "dead_letter": "visit-events-dlq",
        }
    )


def _say(message: str) -> None:
    print(message, flush=True)


def run_night(config: NightConfig) -> dict[str, Any]:
    """Run the whole night; returns the summary (also written to ``out_dir/summary.json``)."""
    out = config.out_dir
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(config.seed)
    broker = LocalBroker(log=out / "broker.log").start()
    worker: subprocess.Popen[bytes] | None = None
    try:
        _say(f"[1/5] local broker at {broker.bootstrap}; creating topics")
        create_topics(broker.bootstrap, config.topics.values())

        visits = night_pointings(config.n_fields, config.start_mjd_tai, rng)
        start = float(visits["midpointMjdTai"].min()) - 0.02
        end = float(visits["midpointMjdTai"].max()) + 0.02
        _say(
            f"[2/5] ephemeris store: {config.n_objects} SYNTHETIC orbits (not the MPC catalogue), "
            f"X05, MJD(TAI) {start:.3f}-{end:.3f}"
        )
        population = generate_population(config.n_objects, seed=config.seed, epoch_mjd_tdb=config.start_mjd_tai)
        orbits = population.to_orbit_table()
        store_dir = out / "store"
        t0 = time.perf_counter()
        build_store(
            orbits,
            "X05",
            start,
            end,
            store_dir,
            workers=config.workers,
            progress=_progress_bar("build"),
            overwrite=True,
        )
        build_s = time.perf_counter() - t0

        _say(f"[3/5] simulating {len(visits)} visits x {len(config.detectors)} detectors (truth: exact N-body)")
        events, payloads, truth, sources = _simulate(config, visits, orbits, store_dir, rng)

        _say(
            f"[4/5] running the worker (ssassoc worker) and publishing the visits, one every "
            f"{config.visit_interval_s:g} s (time-lapse of Rubin's ~34 s)"
        )
        worker = _start_worker(config, broker.bootstrap, store_dir, out)
        _wait_for_assignment(out / "worker.log", worker, timeout_s=120.0)
        publisher = threading.Thread(
            target=_publish_paced, args=(config, broker.bootstrap, events, payloads), daemon=True
        )
        publisher.start()
        outputs, unassociated = _collect_outputs(config, broker.bootstrap, events, worker)
        publisher.join(timeout=60)
        _stop(worker)
        worker_exit = worker.returncode
        worker = None

        _say("[5/5] summary and plots")
        end_to_end_ms = _end_to_end_latency_ms(events, sources, outputs)
        summary = _summarise(config, events, truth, outputs, build_s, worker_exit, end_to_end_ms)
        from .night_plots import write_plots

        summary["plots"] = write_plots(
            out, sources, truth, outputs, unassociated, _worker_log_events(out / "worker.log"), end_to_end_ms
        )
        (out / "summary.json").write_text(json.dumps(summary, indent=2))
        _print_summary(summary, out)
        return summary
    finally:
        if worker is not None:
            _stop(worker)
        broker.close()


# -- stages ---------------------------------------------------------------------------
def _progress_bar(label: str) -> Any:
    """A progress callback: a redrawn bar on a terminal, a line per quarter otherwise."""
    tty = sys.stdout.isatty()
    last = [-1]

    def update(stage: str, done: int, total: int) -> None:
        pct = int(100 * done / max(total, 1))
        step = 2 if tty else 25
        if pct == last[0] or (pct % step and done < total):
            return
        last[0] = pct
        line = f"  {label} {stage:<8} [{'#' * (pct // 4):<25}] {pct:3d}% ({done}/{total})"
        if tty:
            print("\r" + line, end="\n" if done >= total else "", flush=True)
        else:
            print(line, flush=True)

    return update


def _simulate(
    config: NightConfig,
    visits: pd.DataFrame,
    orbits: Any,
    store_dir: Path,
    rng: np.random.Generator,
) -> tuple[pd.DataFrame, list[tuple[bytes, bytes]], pd.DataFrame, pd.DataFrame]:
    """Truth positions of every object at every visit and the detector events, in time order.

    Returns (events, their (key, value) payloads, truth, sources); the last two have
    ``visit`` and ``detector`` columns."""

    times = visits["midpointMjdTai"].to_numpy()
    focal_plane = rubin_like_focal_plane().subset(list(config.detectors))
    # Truth comes from exact N-body ephemerides, not from the store. The store only
    # narrows down which objects to propagate: those within a generous margin
    # (0.5 deg, against fit errors of milliarcseconds) of some pointing.
    store = EphemerisStore.open(store_dir)
    all_ids = _ss_object_ids(orbits.object_id)
    near: set[int] = set()
    pointings = visits[["midpointMjdTai", "ra", "dec", "rotation"]].to_numpy(dtype=np.float64)
    for mjd, ra0, dec0, _ in pointings:
        found = store.query(float(mjd), float(ra0), float(dec0), focal_plane.radius_deg + 0.5)
        near.update(found["ssObjectId"].tolist())
    rows = np.flatnonzero(np.isin(all_ids, np.fromiter(near, dtype=np.int64, count=len(near))))
    _say(f"  propagating the {len(rows)} objects that come near a pointing, at {len(times)} visit times")
    # One process: a few thousand objects, and no fork from a process that may hold Kafka threads.
    truth_states = observe(orbits.take(rows), times, "X05", workers=1)
    object_ids = all_ids[rows]
    truth_ra, truth_dec = _with_orbit_errors(truth_states, config.orbit_error_arcsec, rng)
    event_rows: list[dict[str, Any]] = []
    payloads: list[tuple[bytes, bytes]] = []
    truth_rows: list[pd.DataFrame] = []
    source_rows: list[pd.DataFrame] = []
    next_source_id = 1
    visit_ids = visits["visit"].to_numpy(dtype=np.int64)
    bands = visits["band"].astype(str).to_numpy()
    for k, (mjd, ra0, dec0, rotation) in enumerate(pointings):
        ra, dec = truth_ra[:, k], truth_dec[:, k]
        mag = truth_states.v_mag[:, k]
        det, _, _ = focal_plane.locate(ra, dec, float(ra0), float(dec0), float(rotation))
        exposures = focal_plane.exposures(float(ra0), float(dec0), float(rotation), float(mjd), int(visit_ids[k]))
        for exposure in exposures:
            on = np.flatnonzero(det == exposure.detector)
            sim = simulate_detector(
                exposure,
                object_ids[on],
                ra[on],
                dec[on],
                mag[on],
                rng,
                first_source_id=next_source_id,
                n_field_sources=config.n_field_sources,
            )
            next_source_id += len(sim.sources)
            record = make_visit_event(
                visit=exposure.visit,
                detector=exposure.detector,
                band=str(bands[k]),
                midpoint_mjd_tai=exposure.midpointMjdTai,
                exposure_time_s=30.0,
                wcs=exposure.wcs,
                width=exposure.width,
                height=exposure.height,
                sources=sim.sources,
            )
            payloads.append((f"{exposure.visit}-{exposure.detector}".encode(), wire.encode("visitEvent", record)))
            event_rows.append(
                {
                    "visit": exposure.visit,
                    "visit_index": k,
                    "detector": exposure.detector,
                    "n_sources": len(sim.sources),
                    "n_truth": len(sim.truth),
                }
            )
            truth_rows.append(sim.truth.assign(visit=exposure.visit, detector=exposure.detector))
            source_rows.append(
                sim.sources[["diaSourceId", "ra", "dec"]].assign(visit=exposure.visit, detector=exposure.detector)
            )
    truth = pd.concat(truth_rows, ignore_index=True) if truth_rows else pd.DataFrame()
    sources = pd.concat(source_rows, ignore_index=True) if source_rows else pd.DataFrame()
    events = pd.DataFrame(event_rows)
    events["produced_at"] = np.nan
    return events, payloads, truth, sources


def _publish_paced(
    config: NightConfig, bootstrap: str, events: pd.DataFrame, payloads: list[tuple[bytes, bytes]]
) -> None:
    """Publish the events visit by visit, one visit every ``visit_interval_s`` (in a thread)."""
    from confluent_kafka import Producer

    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 2, "enable.idempotence": True})
    start = time.monotonic()
    produced_at = np.full(len(events), np.nan)
    visit_index = events["visit_index"].to_numpy()
    for k in np.unique(visit_index):
        delay = start + k * config.visit_interval_s - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        for i in np.flatnonzero(visit_index == k):
            key, value = payloads[i]
            produced_at[i] = time.time()
            producer.produce(config.topics["input"], key=key, value=value)
            producer.poll(0)
        producer.flush(30)
    remaining = producer.flush(60)
    events["produced_at"] = produced_at
    if remaining:
        raise RuntimeError(f"{remaining} visit events were not delivered to the broker")


def _wait_for_assignment(log: Path, worker: subprocess.Popen[bytes], timeout_s: float) -> None:
    """Wait until the worker owns its partitions (the first group join takes a few seconds)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if worker.poll() is not None:
            raise RuntimeError(f"the worker exited at start-up with status {worker.returncode}; see {log}")
        if log.exists() and "partitions assigned" in log.read_text(errors="replace"):
            return
        time.sleep(0.2)
    raise TimeoutError(f"the worker did not join its group within {timeout_s} s; see {log}")


def _with_orbit_errors(states: Any, sigma_arcsec: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """True sky positions = catalogue ephemeris + each object's orbit error, mostly along track.

    Catalogue orbits are wrong mainly in where the object is along its path (a timing
    error), so the displacement follows the direction of motion; it is fixed per object
    over one night.
    """
    n_obj, n_t = states.ra_deg.shape
    scale = np.where(rng.random(n_obj) < 0.03, 10.0, 1.0) * sigma_arcsec
    along = rng.normal(0.0, 1.0, n_obj) * scale
    cross = rng.normal(0.0, 1.0, n_obj) * scale / 6.0
    rate_ra, rate_dec = states.ra_rate_deg_per_day, states.dec_rate_deg_per_day
    speed = np.hypot(rate_ra, rate_dec)
    unit_ra = np.where(speed > 0, rate_ra / np.where(speed > 0, speed, 1.0), 1.0)
    unit_dec = np.where(speed > 0, rate_dec / np.where(speed > 0, speed, 1.0), 0.0)
    east = along[:, None] * unit_ra - cross[:, None] * unit_dec
    north = along[:, None] * unit_dec + cross[:, None] * unit_ra
    ra, dec = offset_positions(states.ra_deg.ravel(), states.dec_deg.ravel(), east.ravel(), north.ravel())
    return ra.reshape(n_obj, n_t), dec.reshape(n_obj, n_t)


def _ss_object_ids(object_id: np.ndarray) -> np.ndarray:
    from ssassoc.core.ephemeris.build import ss_object_ids

    return ss_object_ids(object_id)


def _start_worker(config: NightConfig, bootstrap: str, store_dir: Path, out: Path) -> subprocess.Popen[bytes]:
    args = [
        sys.executable,
        "-m",
        "ssassoc.worker",
        "worker",
        "--bootstrap-servers",
        bootstrap,
        "--group-id",
        "ssassoc-night-demo",
        "--input-topic",
        config.topics["input"],
        "--output-topic",
        config.topics["output"],
        "--unassociated-topic",
        config.topics["unassociated"],
        "--dead-letter-topic",
        config.topics["dead_letter"],
        "--ephemeris-store",
        str(store_dir),
        "--log-format",
        "json",
    ]
    env = dict(os.environ)
    env.setdefault("SSASSOC_KAFKA_SESSION_TIMEOUT_MS", "6000")  # the local broker's first assignment waits half of it
    log = open(out / "worker.log", "wb")  # noqa: SIM115 - closed with the process
    return subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env=env)


def _collect_outputs(
    config: NightConfig, bootstrap: str, events: pd.DataFrame, worker: subprocess.Popen[bytes]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Read ssSources (and unassociated objects) until the worker has committed every input
    event (or the timeout). Returns (ssSources, unassociated objects one per row)."""
    from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

    # assign(), not subscribe(): no group membership, so no wait for a group assignment.
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"night-reader-{os.getpid()}",
            "enable.auto.commit": False,
            "isolation.level": "read_committed",
        }
    )
    consumer.assign(
        [
            TopicPartition(config.topics["output"], 0, OFFSET_BEGINNING),
            TopicPartition(config.topics["unassociated"], 0, OFFSET_BEGINNING),
        ]
    )
    watcher = Consumer({"bootstrap.servers": bootstrap, "group.id": "ssassoc-night-demo"})
    n_events = len(events)
    rows: list[dict[str, Any]] = []
    unassociated: list[dict[str, Any]] = []
    deadline = time.monotonic() + config.timeout_s
    last_report = 0.0
    committed = 0

    def take_one() -> bool:
        msg = consumer.poll(0.2)
        if msg is None or msg.error() is not None:
            return False
        if msg.topic() == config.topics["unassociated"]:
            _, event = wire.decode("unassociatedSsObjects", msg.value())
            unassociated.append(event)
            return True
        _, record = wire.decode("ssSource", msg.value())
        record["received_at"] = msg.timestamp()[1] / 1000.0
        rows.append(record)
        return True

    while time.monotonic() < deadline:
        if take_one():
            continue
        if worker.poll() is not None:
            raise RuntimeError(f"the worker exited early with status {worker.returncode}; see worker.log")
        now = time.monotonic()
        if now - last_report > 1.0:
            last_report = now
            offsets = watcher.committed([TopicPartition(config.topics["input"], 0)], timeout=5)
            committed = max(offsets[0].offset, 0) if offsets else 0
            print(
                f"\r  worker progress: {committed}/{n_events} events committed, {len(rows)} ssSources",
                end="",
                flush=True,
            )
            if committed >= n_events:
                # Drain what the worker wrote before its last commit.
                drain_until = time.monotonic() + 2.0
                while time.monotonic() < drain_until:
                    take_one()
                break
    print()
    consumer.close()
    watcher.close()
    if committed < n_events:
        raise TimeoutError(f"only {committed} of {n_events} events were processed within {config.timeout_s} s")
    per_object = [
        {"visit": e["visit"], "detector": e["detector"], "ssObjectId": o, "ephRa": ra, "ephDec": dec}
        for e in unassociated
        for o, ra, dec in zip(e["ssObjectId"], e["ephRa"], e["ephDec"], strict=True)
    ]
    columns = ["visit", "detector", "ssObjectId", "ephRa", "ephDec"]
    return pd.DataFrame(rows), pd.DataFrame(per_object, columns=columns)


def _stop(worker: subprocess.Popen[bytes]) -> None:
    if worker.poll() is None:
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(30)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()


def _summarise(
    config: NightConfig,
    events: pd.DataFrame,
    truth: pd.DataFrame,
    outputs: pd.DataFrame,
    build_s: float,
    worker_exit: int | None,
    end_to_end_ms: np.ndarray,
) -> dict[str, Any]:
    detected = truth[truth["detected"]] if len(truth) else truth
    matched = (
        outputs[["ssObjectId", "diaSourceId"]].drop_duplicates()
        if len(outputs)
        else pd.DataFrame(columns=["ssObjectId", "diaSourceId"])
    )
    joined = detected.merge(matched, on="diaSourceId", how="left", suffixes=("", "_assoc"))
    correct = int((joined["ssObjectId"] == joined["ssObjectId_assoc"]).sum())
    log_events = _worker_log_events(config.out_dir / "worker.log")
    predicted = int(sum(e.get("nPredicted", 0) for e in log_events))
    latency_ms = [float(e["totalMs"]) for e in log_events if "totalMs" in e]
    span_s = (events["produced_at"].max() - events["produced_at"].min()) if len(events) else 0.0
    stamps = [e["timestamp"] for e in log_events if "timestamp" in e]
    busy_s = (
        (pd.Timestamp(max(stamps)) - pd.Timestamp(min(stamps))).total_seconds() if len(stamps) > 1 else float("nan")
    )
    worker_ms = np.sum(latency_ms) if latency_ms else 0.0
    return {
        "config": {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(config).items()},
        "events": len(events),
        "visits": int(events["visit"].nunique()) if len(events) else 0,
        "sources": int(events["n_sources"].sum()) if len(events) else 0,
        "objects_on_detectors_truth": len(truth),
        "objects_detected_truth": len(detected),
        "predicted_by_store": predicted,
        "associated": len(matched),
        "correct": correct,
        "completeness": correct / max(len(detected), 1),
        "purity": correct / max(len(matched), 1),
        "store_build_s": build_s,
        "publish_span_s": float(span_s),
        "worker_events_logged": len(log_events),
        "worker_processing_ms_p50": float(np.percentile(latency_ms, 50)) if latency_ms else None,
        "worker_processing_ms_p99": float(np.percentile(latency_ms, 99)) if latency_ms else None,
        "worker_exit_status": worker_exit,
        "end_to_end_latency_ms": _percentiles(end_to_end_ms),
        "worker_events_per_s_while_busy": len(log_events) / (worker_ms / 1e3) if worker_ms else None,
        "worker_span_s": busy_s,
    }


def _percentiles(values: np.ndarray) -> dict[str, float] | None:
    if len(values) == 0:
        return None
    return {f"p{q}": float(np.percentile(values, q)) for q in (50, 90, 99)} | {"max": float(np.max(values))}


def _end_to_end_latency_ms(events: pd.DataFrame, sources: pd.DataFrame, outputs: pd.DataFrame) -> np.ndarray:
    """Per ssSource: its Kafka timestamp (set when the worker produced it) minus the time its
    visit event was produced (same machine clock)."""
    if len(outputs) == 0:
        return np.zeros(0)
    origin = sources[["diaSourceId", "visit", "detector"]].merge(
        events[["visit", "detector", "produced_at"]], on=["visit", "detector"]
    )
    joined = outputs[["diaSourceId", "received_at"]].merge(origin, on="diaSourceId")
    return ((joined["received_at"] - joined["produced_at"]) * 1e3).to_numpy(dtype=np.float64)


def _worker_log_events(path: Path) -> list[dict[str, Any]]:
    """The worker's per-event task-metadata log lines."""
    events = []
    for line in path.read_text(errors="replace").splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict) and entry.get("event") == "event processed":
            events.append(entry)
    return events


def _print_summary(summary: dict[str, Any], out: Path) -> None:
    _say("")
    _say(f"events {summary['events']} ({summary['visits']} visits), sources {summary['sources']}")
    _say(
        f"objects on the simulated detectors {summary['objects_on_detectors_truth']}, "
        f"detected {summary['objects_detected_truth']}, predicted by the store {summary['predicted_by_store']}"
    )
    _say(
        f"associated {summary['associated']}: completeness {summary['completeness']:.1%}, "
        f"purity {summary['purity']:.1%}"
    )
    if summary["worker_processing_ms_p50"] is not None:
        _say(
            f"worker time per event: p50 {summary['worker_processing_ms_p50']:.2f} ms, "
            f"p99 {summary['worker_processing_ms_p99']:.2f} ms; "
            f"{summary['worker_events_per_s_while_busy']:.0f} events/s while busy"
        )
    if summary["end_to_end_latency_ms"] is not None:
        lat = summary["end_to_end_latency_ms"]
        per_visit = summary["events"] // max(summary["visits"], 1)
        _say(
            f"latency, visit event produced -> ssSource produced: p50 {lat['p50']:.0f} ms, "
            f"p90 {lat['p90']:.0f} ms, p99 {lat['p99']:.0f} ms (a visit's {per_visit} events "
            "arrive at once and queue behind each other)"
        )
    _say(
        f"outputs in {out.resolve()}: summary.json, worker.log, broker.log, store/, "
        + ", ".join(Path(p).name for p in summary.get("plots", []))
    )
