"""Signals: the first SIGTERM/SIGINT asks for a clean stop, a second SIGINT exits at once."""

from __future__ import annotations

import signal

import pytest

from ssassoc.worker import loop


def test_first_signal_requests_a_clean_stop() -> None:
    flag = loop.StopFlag()
    flag._on_signal(signal.SIGTERM, None)
    assert flag.requested


def test_second_sigint_exits_immediately(monkeypatch: pytest.MonkeyPatch) -> None:
    exits: list[int] = []
    monkeypatch.setattr(loop.os, "_exit", exits.append)
    flag = loop.StopFlag()
    flag._on_signal(signal.SIGINT, None)
    assert flag.requested and exits == []
    flag._on_signal(signal.SIGINT, None)
    assert exits == [130]


def test_sigterms_never_force_exit(monkeypatch: pytest.MonkeyPatch) -> None:
    exits: list[int] = []
    monkeypatch.setattr(loop.os, "_exit", exits.append)
    flag = loop.StopFlag()
    for _ in range(3):
        flag._on_signal(signal.SIGTERM, None)
    assert exits == [] and flag.requested
