"""Subcommands of the ``ssassoc`` command line; each module has ``register(subparsers)``."""
