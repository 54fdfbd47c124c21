"""docker-compose.yml and Dockerfile agree with the worker's settings (no Docker engine needed).

What this cannot check: that the images pull and build, that Kafka starts with
these settings, that health checks pass. See docs/worker.md.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from ssassoc.worker.config import WorkerSettings

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def _env(service: dict) -> dict[str, str]:
    env = service.get("environment", {})
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {k: str(v) for k, v in env.items()}


def test_services(compose: dict) -> None:
    assert {"kafka", "kafka-init", "worker"} <= set(compose["services"])
    assert compose["services"]["kafka"]["image"].startswith("apache/kafka:")


def test_kraft_settings_complete(compose: dict) -> None:
    """Any KAFKA_* var disables the image defaults: everything KRaft needs must be there."""
    env = _env(compose["services"]["kafka"])
    required = {
        "KAFKA_NODE_ID", "KAFKA_PROCESS_ROLES", "KAFKA_LISTENERS", "KAFKA_ADVERTISED_LISTENERS",
        "KAFKA_LISTENER_SECURITY_PROTOCOL_MAP", "KAFKA_CONTROLLER_LISTENER_NAMES",
        "KAFKA_CONTROLLER_QUORUM_VOTERS", "KAFKA_LOG_DIRS", "CLUSTER_ID",
        "KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR", "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR",
        "KAFKA_TRANSACTION_STATE_LOG_MIN_ISR", "KAFKA_INTER_BROKER_LISTENER_NAME",
    }  # fmt: skip
    assert required <= set(env)
    assert re.fullmatch(r"[A-Za-z0-9_-]{22}", env["CLUSTER_ID"]), "CLUSTER_ID is a base64 UUID"
    assert set(env["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    listeners = {item.split("://")[0]: item.split(":")[-1] for item in env["KAFKA_LISTENERS"].split(",")}
    protocol_map = dict(item.split(":") for item in env["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"].split(","))
    assert set(listeners) <= set(protocol_map)
    assert env["KAFKA_CONTROLLER_LISTENER_NAMES"] in listeners
    assert env["KAFKA_INTER_BROKER_LISTENER_NAME"] in listeners
    voter = env["KAFKA_CONTROLLER_QUORUM_VOTERS"]
    assert voter.startswith(env["KAFKA_NODE_ID"] + "@kafka:")
    assert voter.rsplit(":", 1)[1] == listeners[env["KAFKA_CONTROLLER_LISTENER_NAMES"]]
    # Transactions (exactly-once) need the transaction log to be creatable on one node.
    assert int(env["KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR"]) <= 1
    data_volume = compose["services"]["kafka"]["volumes"][0]
    assert data_volume.split(":")[1] == env["KAFKA_LOG_DIRS"]
    assert data_volume.split(":")[0] in compose["volumes"]


def test_worker_env_is_valid_worker_settings(compose: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    env = _env(compose["services"]["worker"])
    fields = set(WorkerSettings.model_fields)
    for name, value in env.items():
        if name.startswith("SSASSOC_KAFKA_"):
            continue
        assert name.startswith("SSASSOC_") and name[8:].lower() in fields, name
        monkeypatch.setenv(name, value)
    settings = WorkerSettings()  # validates every value
    kafka_env = _env(compose["services"]["kafka"])
    host, port = settings.bootstrap_servers.split(":")
    assert host == "kafka" and f"PLAINTEXT://kafka:{port}" in kafka_env["KAFKA_ADVERTISED_LISTENERS"]
    assert settings.health_host == "0.0.0.0" and settings.health_port is not None
    assert str(settings.health_port) in str(compose["services"]["worker"]["healthcheck"]["test"])
    # The store lives on a mounted volume.
    mounts = [v.split(":")[1] for v in compose["services"]["worker"]["volumes"]]
    assert any(str(settings.ephemeris_store).startswith(m) for m in mounts)
    assert settings.max_event_bytes <= int(kafka_env["KAFKA_MESSAGE_MAX_BYTES"])


def test_init_creates_every_worker_topic(compose: dict) -> None:
    init = compose["services"]["kafka-init"]
    worker_env = _env(compose["services"]["worker"])
    init_env = _env(init)
    script = " ".join(init["command"])
    for name in ("SSASSOC_INPUT_TOPIC", "SSASSOC_OUTPUT_TOPIC", "SSASSOC_DEAD_LETTER_TOPIC",
                 "SSASSOC_UNASSOCIATED_TOPIC"):
        assert init_env[name] == worker_env[name]
        assert f"$${name}" in script
    # Scaling out: every replica can own at least one partition.
    assert int(init_env["SSASSOC_PARTITIONS"]) >= compose["services"]["worker"]["deploy"]["replicas"] >= 2
    assert init["depends_on"]["kafka"]["condition"] == "service_healthy"
    assert compose["services"]["worker"]["depends_on"]["kafka-init"]["condition"] == (
        "service_completed_successfully")


def test_dockerfile_runs_the_installed_cli() -> None:
    text = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.11", text, re.M)
    for folder in ("core", "worker", "schemas"):
        assert f"COPY {folder} ./{folder}" in text
    assert 'ENTRYPOINT ["ssassoc"]' in text and "USER ssassoc" in text
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert ".venv" in ignored and "schemas" not in ignored
