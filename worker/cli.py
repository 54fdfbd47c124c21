"""The ``ssassoc`` command line: a thin dispatcher over ``worker/commands/*``.

Each command module exposes ``register(subparsers) -> None``, which adds its
sub-parser and sets ``func`` (``(args) -> int``, the exit status) on it.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from ssassoc.core.version import __version__

# Order = order in --help.
COMMAND_MODULES = ("demo", "ephem", "stream", "deadletters", "dev")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ssassoc",
        description="Associate detected sources with known Solar System objects, in a stream.",
    )
    parser.add_argument("--version", action="version", version=f"ssassoc {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        module = importlib.import_module(f"ssassoc.worker.commands.{name}")
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
