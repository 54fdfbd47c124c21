"""``ssassoc dev broker``: a local Kafka-compatible broker (Tansu) for development."""

from __future__ import annotations

import argparse
import signal
import time
from pathlib import Path
from typing import Any


def register(subparsers: Any) -> None:
    dev = subparsers.add_parser("dev", help="Development helpers (local broker).")
    dev_sub = dev.add_subparsers(dest="dev_command", metavar="DEV_COMMAND")
    broker = dev_sub.add_parser(
        "broker",
        help="Run a local Tansu broker on 127.0.0.1 until Ctrl+C.",
        description=(
            "Run Tansu (a Kafka-compatible broker) on loopback, with memory storage, or durable "
            "on SeaweedFS's S3 with --durable DIR. Prints the bootstrap address."
        ),
    )
    broker.add_argument("--port", type=int, default=9092, help="Listener port (default 9092; 0 = any free).")
    broker.add_argument("--durable", type=Path, metavar="DIR",
                        help="Keep topics, messages and offsets in DIR (SeaweedFS) across restarts.")
    broker.add_argument("--topics", default="",
                        help="Comma-separated topics to create (Tansu does not auto-create topics).")
    broker.add_argument("--partitions", type=int, default=1, help="Partitions of --topics (default 1).")
    broker.set_defaults(func=run_broker)
    dev.set_defaults(func=lambda args: (dev.print_help(), 2)[1])


def run_broker(args: argparse.Namespace) -> int:
    from ..broker import BrokerError, LocalBroker, create_topics

    stopping = False

    def on_signal(signum: int, frame: Any) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        broker = LocalBroker.start_new(port=args.port or None, durable_dir=args.durable)
    except BrokerError as exc:
        print(f"ssassoc dev broker: {exc}", flush=True)
        return 1
    try:
        topics = [t for t in args.topics.split(",") if t]
        if topics:
            create_topics(broker.bootstrap, topics, partitions=args.partitions)
        storage = f"durable in {args.durable}" if args.durable else "memory"
        print(f"bootstrap.servers={broker.bootstrap}  ({storage}; Ctrl+C stops)", flush=True)
        while not stopping:
            if broker.process is not None and broker.process.poll() is not None:
                print(f"broker exited with status {broker.process.returncode}", flush=True)
                return 1
            time.sleep(0.2)
        return 0
    finally:
        broker.close()
