"""``ssassoc replay``: by offset and by time, stops by itself, leaves the live group alone."""

from __future__ import annotations

import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from integration_helpers import committed, make_topics, produce, read_topic, ss_pairs

from ssassoc.worker.broker import create_topics
from ssassoc.worker.sample_events import SampleStream

pytestmark = pytest.mark.integration


def _replay(broker, topics, store: Path, output: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ssassoc.worker", "replay", "--bootstrap-servers", broker.bootstrap,
         "--input-topic", topics.input, "--output-topic", output, "--dead-letter-topic",
         topics.dead_letter, "--group-id", topics.group, "--ephemeris-store", str(store),
         "--log-format", "json", "--idle-timeout-s", "20", *args],
        capture_output=True, text=True, timeout=90,
    )  # fmt: skip


def _by_partition(broker, topic: str) -> dict[int, list[bytes]]:
    out: dict[int, list[bytes]] = {}
    for record in sorted(read_topic(broker.bootstrap, topic, timeout_s=10), key=lambda r: r.offset):
        out.setdefault(record.partition, []).append(record.key)
    return out


def test_replay_by_offset(broker, stream: SampleStream, store_csv: Path) -> None:
    topics = make_topics(broker.bootstrap, partitions=3)
    produce(broker.bootstrap, topics.input, stream.events)
    layout = _by_partition(broker, topics.input)
    key_to_event = {e.key: e for e in stream.events}
    output = f"{topics.output}-replay"
    create_topics(broker.bootstrap, [output])
    result = _replay(broker, topics, store_csv, output, "--from-offset", "0:1,1:0,2:2",
                     "--to-offset", "0:4,1:3")
    assert result.returncode == 0, result.stderr[-3000:]
    # partition 0: offsets 1-3; partition 1: 0-2; partition 2: from 2 to its end
    chosen = layout[0][1:4] + layout[1][0:3] + layout[2][2:]
    expected = set().union(*(key_to_event[k].truth for k in chosen))
    pairs = ss_pairs(read_topic(broker.bootstrap, output, min_count=len(expected)))
    assert set(pairs) == expected and len(pairs) == len(expected)
    # The live group was not touched.
    assert all(o < 0 for o in committed(broker.bootstrap, topics.group, topics.input).values())


def test_replay_by_time(broker, stream: SampleStream, store_csv: Path) -> None:
    topics = make_topics(broker.bootstrap, partitions=2)
    early, late = stream.events[:6], stream.events[6:12]
    produce(broker.bootstrap, topics.input, early)
    time.sleep(1.5)  # offsets_for_times has per-batch, ~1 s resolution on Tansu
    boundary = datetime.now(UTC).isoformat()
    time.sleep(1.5)
    produce(broker.bootstrap, topics.input, late)
    output = f"{topics.output}-replay"
    create_topics(broker.bootstrap, [output])
    result = _replay(broker, topics, store_csv, output, "--from-time", boundary)
    assert result.returncode == 0, result.stderr[-3000:]
    expected = set().union(*(e.truth for e in late))
    pairs = ss_pairs(read_topic(broker.bootstrap, output, min_count=len(expected)))
    assert set(pairs) == expected

    result = _replay(broker, topics, store_csv, f"{output}", "--from-beginning", "--to-time", boundary)
    assert result.returncode == 0, result.stderr[-3000:]
    pairs = ss_pairs(read_topic(broker.bootstrap, output, min_count=len(expected) + 1))
    assert set(pairs) == expected | set().union(*(e.truth for e in early))


def test_replay_bad_range_is_a_clear_error(broker, store_csv: Path) -> None:
    topics = make_topics(broker.bootstrap, partitions=1)
    result = _replay(broker, topics, store_csv, topics.output, "--from-offset", "7:0")
    assert result.returncode == 1
    assert "no partitions [7]" in result.stderr
