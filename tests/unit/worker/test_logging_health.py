"""The JSON log lines (orjson) and the per-event health counters."""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import numpy as np
import pytest

from ssassoc.worker.health import HealthState
from ssassoc.worker.logging import configure_logging, get_logger


@pytest.mark.parametrize("text_only", [False, True])
def test_json_lines_render_numpy_paths_and_tracebacks(monkeypatch, text_only) -> None:
    raw = io.BytesIO()
    stream = io.StringIO() if text_only else io.TextIOWrapper(raw, write_through=True)
    monkeypatch.setattr(sys, "stderr", stream)
    configure_logging("json")
    log = get_logger(visit=7)
    log.info("event processed", n=np.int64(3), ms=np.float64(0.5), path=Path("/s"), meta={"a.b": 1})
    try:
        raise ValueError("boom")
    except ValueError:
        log.error("event dead-lettered", exc_info=True)
    text = stream.getvalue() if text_only else raw.getvalue().decode()
    first, second = (json.loads(line) for line in text.splitlines())
    assert first["event"] == "event processed" and first["visit"] == 7 and first["logger"] == "ssassoc.worker"
    assert (first["n"], first["ms"], first["path"], first["meta"]) == (3, 0.5, "PosixPath('/s')", {"a.b": 1})
    assert first["level"] == "info" and first["timestamp"].endswith("Z")
    assert "ValueError: boom" in second["exception"]


def test_add_event_counts_like_single_increments() -> None:
    health = HealthState()
    health.add_event(4, {"decodeMs": 2.0, "totalMs": 5.0})
    health.add_event(1, {"decodeMs": 1.0, "totalMs": 3.0})
    text = health.prometheus_text()
    assert "ssassoc_events_total 2" in text
    assert "ssassoc_ss_sources_total 5" in text
    assert "ssassoc_stage_decode_seconds_total 0.003" in text
    assert "ssassoc_stage_total_seconds_total 0.008" in text
