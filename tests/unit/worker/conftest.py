"""Shared fixtures of the worker's unit tests: a small synthetic stream."""

from __future__ import annotations

import pytest

from ssassoc.worker.processing import EventProcessor
from ssassoc.worker.sample_events import SampleStream, sample_stream


@pytest.fixture(scope="session")
def stream() -> SampleStream:
    return sample_stream(3, n_sources=300, n_objects=12, seed=5)


@pytest.fixture(scope="session")
def processor(stream: SampleStream) -> EventProcessor:
    return EventProcessor(stream.provider(), output_topic="out", unassociated_topic="unassoc")
