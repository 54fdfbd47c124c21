"""Reading and re-driving the dead-letter topic against the real local broker."""

import subprocess
import sys

import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Producer, TopicPartition
from integration_helpers import make_topics

from ssassoc.worker.deadletter import InputMessage, dead_letter_message
from ssassoc.worker.redrive import read_dead_letters, redrive

pytestmark = pytest.mark.integration


def _letters(bootstrap, topic):
    originals = [
        InputMessage(topic="visits", partition=0, offset=i, value=b"\x00bad%d" % i, key=b"k%d" % i,
                     headers=[("trace", b"t%d" % i)], timestamp_ms=1_700_000_000_000 + i)
        for i in range(5)
    ]  # fmt: skip
    classes = ["undecodable", "bad_exposure", "undecodable", "outside_ephemeris_coverage", "bad_exposure"]
    producer = Producer({"bootstrap.servers": bootstrap})
    for original, cls in zip(originals, classes, strict=True):
        out = dead_letter_message(original, cls, ValueError(f"because {cls}"), topic)
        producer.produce(out.topic, key=out.key, value=out.value, headers=out.headers)
    assert producer.flush(15) == 0
    return originals, classes


def _read_all(bootstrap, topic):
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "reader", "enable.partition.eof": True})
    parts = consumer.list_topics(topic, timeout=10).topics[topic].partitions
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in parts])
    got, pending = [], set(parts)
    while pending:
        msg = consumer.poll(5)
        assert msg is not None, "timed out"
        if msg.error() is not None:
            assert msg.error().code() == KafkaError._PARTITION_EOF
            pending.discard(msg.partition())
            continue
        got.append(msg)
    consumer.close()
    return got


def test_show_and_redrive_selected_classes(broker):
    topics = make_topics(broker.bootstrap, partitions=2)
    originals, classes = _letters(broker.bootstrap, topics.dead_letter)
    letters = list(read_dead_letters(broker.bootstrap, topics.dead_letter))
    assert sorted(letter.error_class for letter in letters) == sorted(classes)

    n = redrive(broker.bootstrap, topics.dead_letter, topics.input, select=lambda d: d.error_class == "bad_exposure")
    assert n == 2
    back = _read_all(broker.bootstrap, topics.input)
    wanted = {o.key: o for o, c in zip(originals, classes, strict=True) if c == "bad_exposure"}
    assert {m.key() for m in back} == set(wanted)
    for msg in back:
        original = wanted[msg.key()]
        assert msg.value() == original.value  # the original bytes, unchanged
        headers = dict(msg.headers())
        assert headers["trace"] == dict(original.headers)["trace"]
        assert headers["ssassoc.redriven.from"].startswith(topics.dead_letter.encode())

    cli = subprocess.run(
        [sys.executable, "-m", "ssassoc.worker", "deadletters", "show", "--bootstrap-servers", broker.bootstrap,
         "--dead-letter-topic", topics.dead_letter],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert cli.returncode == 0, cli.stderr
    assert "5 dead letters: bad_exposure 2, undecodable 2, outside_ephemeris_coverage 1" in cli.stdout


def test_missing_topic_is_a_clear_error(broker):
    with pytest.raises(RuntimeError, match="does not exist"):
        list(read_dead_letters(broker.bootstrap, "no-such-topic-xyz", idle_timeout_s=5))
