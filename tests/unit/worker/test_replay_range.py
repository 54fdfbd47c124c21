"""Replay range parsing and the retention rule (Tansu has no DeleteRecords to test it live)."""

from __future__ import annotations

import pytest

from ssassoc.worker.replay import ReplayError, ReplayRange, parse_offsets, parse_time_ms, resolve_start


def test_parse_offsets() -> None:
    assert parse_offsets("0:10, 2:5") == {0: 10, 2: 5}
    for bad in ("0", "a:1", "-1:3", "0:-2"):
        with pytest.raises(ValueError):
            parse_offsets(bad)


def test_parse_time_is_utc_by_default() -> None:
    assert parse_time_ms("1970-01-01T00:00:01") == 1000
    assert parse_time_ms("1970-01-01T01:00:01+01:00") == 1000
    assert parse_time_ms("1970-01-01T00:00:01Z") == 1000


def test_exactly_one_start() -> None:
    with pytest.raises(ValueError):
        ReplayRange.from_args()
    with pytest.raises(ValueError):
        ReplayRange.from_args(from_beginning=True, from_offset="0:1")
    with pytest.raises(ValueError):
        ReplayRange.from_args(from_beginning=True, to_offset="0:1", to_time="2026-01-01")
    r = ReplayRange.from_args(from_offset="1:4", to_time="2026-01-01T00:00:00")
    assert r.from_offsets == {1: 4} and r.to_time_ms == parse_time_ms("2026-01-01T00:00:00")


def test_deleted_offset_is_an_error_unless_clamped() -> None:
    with pytest.raises(ReplayError, match=r"deleted by retention \(earliest retained: 100\); use --clamp"):
        resolve_start("events", 3, 40, 100, clamp=False)
    assert resolve_start("events", 3, 40, 100, clamp=True) == 100
    assert resolve_start("events", 3, 140, 100, clamp=False) == 140
    assert resolve_start("events", 3, 0, -1, clamp=False) == 0  # low watermark unknown
