"""Liveness, readiness and Prometheus text metrics of one worker process.

The loop updates a :class:`HealthState`; a small HTTP server (daemon thread)
serves ``/healthz`` (the loop turned recently), ``/readyz`` (joined the group
with the ephemeris store open) and ``/metrics``. A heartbeat file, touched at
most once a second, serves orchestrators that probe files instead.
"""

from __future__ import annotations

import os
import threading
import time
from collections import defaultdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

__all__ = ["HealthServer", "HealthState"]

_STAGE_COUNTER: dict[str, str] = {}


def _stage_counter(stage: str) -> str:
    """``decodeMs`` -> ``stage_decode_seconds_total`` (memoised: it runs per stage per event)."""
    name = _STAGE_COUNTER[stage] = f"stage_{stage.removesuffix('Ms')}_seconds_total"
    return name


class HealthState:
    """Thread-safe counters and flags shared by the loop and the HTTP endpoint."""

    def __init__(self, liveness_timeout_s: float = 60.0, heartbeat_file: Path | None = None) -> None:
        self.liveness_timeout_s = liveness_timeout_s
        self.heartbeat_file = heartbeat_file
        self._lock = threading.Lock()
        self._last_beat = time.monotonic()
        self._last_file_beat = 0.0
        self.ready = False
        self.counters: dict[str, float] = defaultdict(float)
        self.labelled: dict[tuple[str, str, str], float] = defaultdict(float)
        self.gauges: dict[str, float] = {}

    def beat(self) -> None:
        now = time.monotonic()
        with self._lock:
            self._last_beat = now
        if self.heartbeat_file is not None and now - self._last_file_beat >= 1.0:
            self._last_file_beat = now
            self.heartbeat_file.parent.mkdir(parents=True, exist_ok=True)
            self.heartbeat_file.touch()
            os.utime(self.heartbeat_file)

    def alive(self) -> bool:
        with self._lock:
            return time.monotonic() - self._last_beat < self.liveness_timeout_s

    def inc(self, name: str, value: float = 1.0) -> None:
        with self._lock:
            self.counters[name] += value

    def add_event(self, ss_sources: int, stage_ms: dict[str, float]) -> None:
        """Counters of one processed event under one lock (``stage_ms``: ``<stage>Ms`` -> ms)."""
        counters = self.counters
        with self._lock:
            counters["events_total"] += 1
            counters["ss_sources_total"] += ss_sources
            for stage, ms in stage_ms.items():
                counters[_STAGE_COUNTER.get(stage) or _stage_counter(stage)] += ms * 1e-3

    def inc_labelled(self, name: str, label: str, label_value: str, value: float = 1.0) -> None:
        with self._lock:
            self.labelled[(name, label, label_value)] += value

    def set_gauge(self, name: str, value: float) -> None:
        with self._lock:
            self.gauges[name] = value

    def prometheus_text(self) -> str:
        """Metrics in the Prometheus text exposition format (all prefixed ``ssassoc_``)."""
        lines: list[str] = []
        with self._lock:
            for name, value in sorted(self.counters.items()):
                lines += [f"# TYPE ssassoc_{name} counter", f"ssassoc_{name} {value:g}"]
            seen: set[str] = set()
            for (name, label, label_value), value in sorted(self.labelled.items()):
                if name not in seen:
                    lines.append(f"# TYPE ssassoc_{name} counter")
                    seen.add(name)
                lines.append(f'ssassoc_{name}{{{label}="{label_value}"}} {value:g}')
            for name, value in sorted(self.gauges.items()):
                lines += [f"# TYPE ssassoc_{name} gauge", f"ssassoc_{name} {value:g}"]
            lines += ["# TYPE ssassoc_up gauge", f"ssassoc_up {1 if self.ready else 0}"]
        return "\n".join(lines) + "\n"


class HealthServer:
    """``/healthz``, ``/readyz``, ``/metrics`` on a daemon thread."""

    def __init__(self, state: HealthState, host: str, port: int, metrics: bool = True) -> None:
        self.state = state
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                status, body, kind = outer.respond(self.path)
                payload = body.encode()
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:
                return  # probes every few seconds would flood the logs

        self.metrics = metrics
        self.server = ThreadingHTTPServer((host, port), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, name="health", daemon=True)

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    def respond(self, path: str) -> tuple[int, str, str]:
        if path == "/healthz":
            ok = self.state.alive()
            return (200 if ok else 503), ("ok\n" if ok else "stalled\n"), "text/plain"
        if path == "/readyz":
            ok = self.state.ready and self.state.alive()
            return (200 if ok else 503), ("ready\n" if ok else "not ready\n"), "text/plain"
        if path == "/metrics" and self.metrics:
            return 200, self.state.prometheus_text(), "text/plain; version=0.0.4"
        return 404, "not found\n", "text/plain"

    def start(self) -> HealthServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
