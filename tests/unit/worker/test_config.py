"""Settings: env prefix, librdkafka pass-through, precedence, validation, redaction."""

from __future__ import annotations

import argparse

import pytest
from pydantic import ValidationError

from ssassoc.worker.config import (
    WorkerSettings,
    add_settings_arguments,
    kafka_from_env,
    parse_kafka_pairs,
    redact,
    settings_from_args,
)


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_settings_arguments(parser)
    return parser.parse_args(argv)


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for name in list(os.environ):
        if name.startswith(("SSASSOC_", "KAFKA_")):
            monkeypatch.delenv(name)


def test_every_field_is_documented_and_has_a_flag() -> None:
    parser = argparse.ArgumentParser()
    add_settings_arguments(parser)
    flags = {a.dest for a in parser._actions}
    for name, field in WorkerSettings.model_fields.items():
        assert field.description, name
        assert name in flags or name == "kafka", name


def test_env_prefix_and_flag_precedence(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SSASSOC_GROUP_ID", "from-env")
    monkeypatch.setenv("SSASSOC_MAX_SOURCES", "42")
    settings = settings_from_args(_parse(["--group-id", "from-flag"]))
    assert settings.group_id == "from-flag"
    assert settings.max_sources == 42


def test_kafka_env_style_maps_to_librdkafka_keys() -> None:
    env = {
        "KAFKA_BOOTSTRAP_SERVERS": "a:1",
        "KAFKA_SASL_PASSWORD": "x",
        "SSASSOC_KAFKA_SASL_PASSWORD": "y",
        "KAFKA_PORT": "tcp://10.0.0.1:9092",  # Kubernetes service link, not librdkafka
        "KAFKA_SERVICE_HOST": "10.0.0.1",
    }
    assert kafka_from_env(env) == {"bootstrap.servers": "a:1", "sasl.password": "y"}


def test_kafka_bootstrap_from_env_unless_flag_given(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "env:9092")
    assert settings_from_args(_parse([])).common_kafka()["bootstrap.servers"] == "env:9092"
    flagged = settings_from_args(_parse(["--bootstrap-servers", "flag:9092"]))
    assert flagged.common_kafka()["bootstrap.servers"] == "flag:9092"


def test_kafka_flag_pairs_win_over_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAFKA_LINGER_MS", "50")
    settings = settings_from_args(_parse(["--kafka", "linger.ms=5", "--kafka", "client.rack=r1"]))
    assert settings.kafka == {"linger.ms": "5", "client.rack": "r1"}
    with pytest.raises(ValueError, match="KEY=VALUE"):
        parse_kafka_pairs(["novalue"])


@pytest.mark.parametrize("key", ["enable.auto.commit", "transactional.id", "isolation.level", "group.id"])
def test_guarantee_keys_are_refused(key: str) -> None:
    with pytest.raises(ValidationError, match="set by the worker"):
        WorkerSettings(kafka={key: "x"})


def test_validation_rejects_bad_values() -> None:
    with pytest.raises(ValidationError):
        WorkerSettings(processing_guarantee="at-most-once")  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        WorkerSettings(max_sources=0)
    with pytest.raises(ValidationError, match="must differ"):
        WorkerSettings(input_topic="t", output_topic="t")
    with pytest.raises(ValidationError):
        WorkerSettings(retry_initial_s=10, retry_max_s=1)


def test_secrets_are_redacted() -> None:
    settings = WorkerSettings(kafka={"sasl.password": "hunter2", "sasl.username": "me",
                                     "ssl.key.pem": "----", "linger.ms": "5"})
    dumped = settings.safe_dump()
    assert "hunter2" not in str(dumped) and "----" not in str(dumped)
    assert dumped["kafka"]["sasl.username"] == "me"
    assert redact({"sasl.oauthbearer.client.secret": "s"}) == {"sasl.oauthbearer.client.secret": "***"}


def test_boolean_and_choice_flags() -> None:
    settings = settings_from_args(_parse(["--no-metrics", "--processing-guarantee", "at-least-once"]))
    assert settings.metrics is False
    assert settings.processing_guarantee == "at-least-once"
    with pytest.raises(SystemExit):
        _parse(["--processing-guarantee", "maybe"])
