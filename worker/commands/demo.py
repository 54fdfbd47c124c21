"""`ssassoc demo ...` subcommands (not yet implemented)."""

from __future__ import annotations

import argparse
from typing import Any


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("demo", help="(not yet implemented)")
    parser.set_defaults(func=_not_yet)


def _not_yet(args: argparse.Namespace) -> int:
    print("ssassoc demo: not implemented yet", flush=True)
    return 2
