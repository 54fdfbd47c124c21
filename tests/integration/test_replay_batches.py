"""Replay associates whole fetches at once; a bad event in a fetch is dead-lettered alone."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from integration_helpers import make_topics, produce, read_topic, ss_pairs

from ssassoc.worker.broker import create_topics
from ssassoc.worker.sample_events import SampleStream

pytestmark = pytest.mark.integration


def test_replay_with_bad_events_among_good_ones(broker, stream: SampleStream, store_csv: Path) -> None:
    topics = make_topics(broker.bootstrap, partitions=1)
    good = stream.events[:10]
    bad = [(b"bad-1", b"\x07not avro"), (b"bad-2", good[0].value[:40])]
    produce(broker.bootstrap, topics.input, [(e.key, e.value) for e in good[:5]] + bad[:1]
            + [(e.key, e.value) for e in good[5:]] + bad[1:])  # fmt: skip
    output = f"{topics.output}-replay"
    create_topics(broker.bootstrap, [output])
    result = subprocess.run(
        [sys.executable, "-m", "ssassoc.worker", "replay", "--bootstrap-servers", broker.bootstrap,
         "--input-topic", topics.input, "--output-topic", output, "--dead-letter-topic",
         topics.dead_letter, "--group-id", topics.group, "--ephemeris-store", str(store_csv),
         "--log-format", "json", "--idle-timeout-s", "20", "--from-beginning"],
        capture_output=True, text=True, timeout=90,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    expected = set().union(*(e.truth for e in good))
    pairs = ss_pairs(read_topic(broker.bootstrap, output, min_count=len(expected)))
    assert set(pairs) == expected and len(pairs) == len(expected)
    dead = read_topic(broker.bootstrap, topics.dead_letter, min_count=2)
    assert sorted(r.key for r in dead) == [b"bad-1", b"bad-2"]
