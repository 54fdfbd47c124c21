"""``ssassoc worker`` (the streaming service) and ``ssassoc replay`` (reprocess history)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from pydantic import ValidationError

from ..config import add_settings_arguments, settings_from_args
from ..logging import configure_logging, get_logger


def register(subparsers: Any) -> None:
    worker = subparsers.add_parser(
        "worker",
        help="Run the streaming worker: visit events in, ssSource records out.",
        description=(
            "Consume visit events, associate their sources with known Solar System objects and "
            "produce ssSource records. SIGTERM/SIGINT stop it cleanly; a second SIGINT exits at once."
        ),
    )
    add_settings_arguments(worker)
    worker.set_defaults(func=run_worker)

    replay = subparsers.add_parser(
        "replay",
        help="Reprocess a range of the input topic to another topic, outside the consumer group.",
        description=(
            "Read a range of the input topic by assign/seek (no group membership, no commits), "
            "process it like the worker and write to --output-topic; stops at the end of the range."
        ),
    )
    start = replay.add_mutually_exclusive_group(required=True)
    start.add_argument("--from-beginning", action="store_true", help="Start at the earliest offset.")
    start.add_argument("--from-offset", metavar="P:O[,P:O...]", help="Start offsets per partition.")
    start.add_argument("--from-time", metavar="ISO", help="Start at the first message at/after this time.")
    end = replay.add_mutually_exclusive_group()
    end.add_argument("--to-offset", metavar="P:O[,P:O...]", help="Stop before these offsets (exclusive).")
    end.add_argument("--to-time", metavar="ISO", help="Stop at the first message at/after this time.")
    replay.add_argument(
        "--clamp", action="store_true",
        help="Start at the earliest retained offset when a start offset was deleted by retention.",
    )
    replay.add_argument("--idle-timeout-s", type=float, default=30.0,
                        help="Give up when no message arrives for this long [s] (default 30).")
    add_settings_arguments(replay)
    replay.set_defaults(func=run_replay)


def _settings(args: argparse.Namespace) -> Any:
    try:
        return settings_from_args(args)
    except (ValidationError, ValueError) as exc:
        print(f"ssassoc: invalid settings:\n{exc}", file=sys.stderr)
        return None


def run_worker(args: argparse.Namespace) -> int:
    from ..health import HealthServer
    from ..loop import StopFlag, build_worker

    settings = _settings(args)
    if settings is None:
        return 2
    configure_logging(settings.log_format, settings.log_level)
    log = get_logger()
    stop = StopFlag()
    stop.install()
    try:
        worker = build_worker(settings, log=log, stop=stop)
    except Exception as exc:  # store missing/corrupt, bad settings: say why, exit 2
        log.error("cannot start worker", error=str(exc), error_type=type(exc).__name__)
        return 2
    server = None
    if settings.health_port is not None:
        server = HealthServer(worker.health, settings.health_host, settings.health_port,
                              metrics=settings.metrics).start()
        log.info("health endpoint", host=settings.health_host, port=server.port)
    try:
        return worker.run()
    finally:
        if server is not None:
            server.stop()


def run_replay(args: argparse.Namespace) -> int:
    from ..loop import StopFlag
    from ..replay import ReplayError, ReplayRange, run_replay_job

    settings = _settings(args)
    if settings is None:
        return 2
    configure_logging(settings.log_format, settings.log_level)
    log = get_logger("ssassoc.replay")
    stop = StopFlag()
    stop.install()
    try:
        replay_range = ReplayRange.from_args(
            from_beginning=args.from_beginning, from_offset=args.from_offset,
            from_time=args.from_time, to_offset=args.to_offset, to_time=args.to_time,
        )
        summary = run_replay_job(settings, replay_range, log=log, stop=stop, clamp=args.clamp,
                                 idle_timeout_s=args.idle_timeout_s)
    except ReplayError as exc:
        log.error("replay failed", error=str(exc))
        return 1
    except ValueError as exc:
        log.error("invalid replay range", error=str(exc))
        return 2
    except Exception as exc:  # broker or store unusable: say why
        log.error("replay failed", error=str(exc), error_type=type(exc).__name__)
        return 1
    log.info("replay finished", **summary)
    return 0
