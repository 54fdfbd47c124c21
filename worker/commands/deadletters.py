"""``ssassoc deadletters show|redrive``: read the dead-letter topic, put events back.

Defaults for the broker and topics come from the worker's settings
(``SSASSOC_BOOTSTRAP_SERVERS``, ``SSASSOC_DEAD_LETTER_TOPIC``,
``SSASSOC_INPUT_TOPIC``); librdkafka properties from ``KAFKA_*`` /
``SSASSOC_KAFKA_*`` as for the worker.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from typing import Any


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "deadletters",
        help="show the dead-letter topic, or re-drive its events to the input topic",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="deadletters_command", metavar="ACTION")
    show = commands.add_parser("show", help="list dead letters: why, and where they came from")
    redrive = commands.add_parser("redrive", help="produce the original events again to the input topic")
    for sub in (show, redrive):
        sub.add_argument("--bootstrap-servers", help="default: the worker setting (SSASSOC_BOOTSTRAP_SERVERS)")
        sub.add_argument("--dead-letter-topic", help="default: the worker setting (SSASSOC_DEAD_LETTER_TOPIC)")
        sub.add_argument("--error-class", action="append", help="only this class (repeatable), e.g. bad_exposure")
        sub.add_argument("--idle-timeout-s", type=float, default=10.0, help="give up after this long with no data")
    show.add_argument("--format", choices=("table", "json"), default="table", help="output format")
    show.add_argument("--limit", type=int, default=50, help="rows to print in table format (counts cover all)")
    redrive.add_argument("--to-topic", help="default: the worker's input topic (SSASSOC_INPUT_TOPIC)")
    show.set_defaults(func=_show)
    redrive.set_defaults(func=_redrive)
    parser.set_defaults(func=lambda args: (parser.print_help(), 2)[1])


def _settings(args: argparse.Namespace) -> tuple[str, str, dict[str, str]]:
    from ssassoc.worker.config import WorkerSettings, kafka_from_env

    settings = WorkerSettings()
    bootstrap = args.bootstrap_servers or settings.bootstrap_servers
    topic = args.dead_letter_topic or settings.dead_letter_topic
    return bootstrap, topic, kafka_from_env()


def _selector(args: argparse.Namespace) -> Any:
    wanted = set(args.error_class or [])
    return lambda letter: not wanted or letter.error_class in wanted


def _show(args: argparse.Namespace) -> int:
    from ssassoc.worker.redrive import read_dead_letters

    bootstrap, topic, kafka = _settings(args)
    select = _selector(args)
    counts: Counter[str] = Counter()
    shown = 0
    try:
        for letter in read_dead_letters(bootstrap, topic, kafka=kafka, idle_timeout_s=args.idle_timeout_s):
            if not select(letter):
                continue
            counts[letter.error_class] += 1
            r = letter.record
            if args.format == "json":
                view = {k: v for k, v in r.items() if k not in ("originalValue", "originalKey", "originalHeaders")}
                view["originalValueBytes"] = len(r["originalValue"] or b"")
                print(json.dumps({"partition": letter.partition, "offset": letter.offset, **view}))
            elif shown < args.limit:
                shown += 1
                where = f"{r['sourceTopic']}/{r['sourcePartition']}/{r['sourceOffset']}"
                print(
                    f"{letter.partition}:{letter.offset:<8} {r['errorClass']:<28} {where:<32} {r['errorMessage'][:90]}"
                )
    except (RuntimeError, TimeoutError) as exc:
        print(f"ssassoc deadletters: {exc}", file=sys.stderr)
        return 1
    if args.format == "table":
        total = sum(counts.values())
        ordered = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
        by_class = ", ".join(f"{k} {v}" for k, v in ordered)
        print(f"{total} dead letters" + (f": {by_class}" if total else ""))
    return 0


def _redrive(args: argparse.Namespace) -> int:
    from ssassoc.worker.config import WorkerSettings
    from ssassoc.worker.redrive import redrive

    bootstrap, topic, kafka = _settings(args)
    to_topic = args.to_topic or WorkerSettings().input_topic
    try:
        n = redrive(bootstrap, topic, to_topic, select=_selector(args), kafka=kafka, idle_timeout_s=args.idle_timeout_s)
    except (RuntimeError, TimeoutError) as exc:
        print(f"ssassoc deadletters: {exc}", file=sys.stderr)
        return 1
    print(f"re-drove {n} events from {topic} to {to_topic}")
    return 0
