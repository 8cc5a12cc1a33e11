"""Structured JSON logs through structlog: one line per request, never a key or a ticket."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import structlog

__all__ = ["configure_logging", "request_logger"]


def configure_logging(level: str = "INFO", log_file: Path | None = None) -> None:
    """Send storykit's and the stdlib's logs to ``log_file`` (or stderr) as JSON lines."""
    stream = open(log_file, "a", encoding="utf-8", buffering=1) if log_file else sys.stderr  # noqa: SIM115
    # Tracebacks without the frames' locals: those hold the request (its URL with
    # ``?key=`` or ``?ticket=``), its headers and its parsed body.
    tracebacks = structlog.processors.ExceptionRenderer(
        structlog.tracebacks.ExceptionDictTransformer(show_locals=False)
    )
    shared: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    structlog.configure(
        processors=[
            *shared,
            tracebacks,
            structlog.processors.JSONRenderer(),
        ],
        logger_factory=structlog.WriteLoggerFactory(file=stream),
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level)),
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(stream)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                tracebacks,
                structlog.processors.JSONRenderer(),
            ],
            foreign_pre_chain=[*shared, structlog.stdlib.ExtraAdder()],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # Hypercorn's access log would print query strings (``?key=``): storykit logs requests itself.
    logging.getLogger("hypercorn.access").disabled = True


def request_logger() -> structlog.typing.FilteringBoundLogger:
    return structlog.get_logger("storykit.request")  # type: ignore[no-any-return]
