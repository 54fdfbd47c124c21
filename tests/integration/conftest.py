"""Integration fixtures: a real Tansu broker per session, fresh topics per test, worker processes.

Everything listens on 127.0.0.1. Every process started here is stopped by a
finalizer, and every wait is bounded.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from integration_helpers import SESSION_TIMEOUT_MS, Topics, WorkerProcess, make_topics

from ssassoc.worker.broker import LocalBroker
from ssassoc.worker.sample_events import SampleStream, sample_stream


@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalBroker]:
    log = tmp_path_factory.mktemp("tansu") / "tansu.log"
    local = LocalBroker(log=log).start()
    try:
        yield local
    finally:
        local.close()


@pytest.fixture(scope="session")
def stream() -> SampleStream:
    """40 detector events (~500 sources, 20 predicted objects each) and their truth."""
    return sample_stream(40, n_sources=500, n_objects=20, seed=11)


@pytest.fixture(scope="session")
def store_csv(stream: SampleStream, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("ephemeris") / "objects.csv"
    stream.provider().to_csv(path)
    return path


@pytest.fixture()
def topics(broker: LocalBroker) -> Topics:
    return make_topics(broker.bootstrap)


@pytest.fixture()
def start_worker(
    broker: LocalBroker, store_csv: Path, tmp_path: Path
) -> Iterator[Any]:
    started: list[WorkerProcess] = []

    def start(topics: Topics, *extra: str, bootstrap: str | None = None, name: str = "w") -> WorkerProcess:
        args = [
            "worker", "--bootstrap-servers", bootstrap or broker.bootstrap, *topics.args(),
            "--ephemeris-store", str(store_csv), "--kafka", f"session.timeout.ms={SESSION_TIMEOUT_MS}",
            "--log-format", "json", "--commit-interval-s", "0.2", "--summary-interval-s", "2",
            "--instance-id", f"{name}-{uuid.uuid4().hex[:6]}", "--retry-initial-s", "0.2",
            "--retry-max-s", "1", *extra,
        ]  # fmt: skip
        worker = WorkerProcess(args, tmp_path / f"{name}-{len(started)}.log")
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop()


