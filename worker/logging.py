"""structlog set-up: JSON lines by default, readable console output on a terminal."""

from __future__ import annotations

import logging
import sys
from typing import Any, Literal

import structlog

__all__ = ["configure_logging", "get_logger"]


def configure_logging(
    log_format: Literal["json", "console"] | None = None, level: str = "INFO"
) -> None:
    """Route structlog (and stdlib logging) to stderr, one event per line.

    ``log_format=None`` picks console rendering when stderr is a terminal.
    """
    if log_format is None:
        log_format = "console" if sys.stderr.isatty() else "json"
    renderer: Any
    if log_format == "json":
        renderer = structlog.processors.JSONRenderer()
    else:
        renderer = structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    numeric_level = logging.getLevelName(level)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.StackInfoRenderer(),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric_level),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )
    # Library loggers (astropy, the core's task timers) go to stderr at WARNING and above.
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, force=True)


def get_logger(name: str = "ssassoc.worker", **bound: Any) -> Any:
    """A structlog logger bound with ``logger=name`` and any context given."""
    return structlog.get_logger(name).bind(logger=name, **bound)
