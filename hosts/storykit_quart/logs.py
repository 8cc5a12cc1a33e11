"""Structured JSON logs through structlog: one line per request, never a key or a ticket.

The request line is the one written on every request, so it has a path of its own
(:func:`request_writer`): the same JSON fields structlog would write (``event``,
``level``, ``timestamp`` and the request's), encoded in one ``json.dumps`` and written
into a buffered file that :func:`flushing` empties every :data:`FLUSH_INTERVAL` seconds
and every other log line empties at once. Through structlog's processor chain, with a
write and a flush per line, it was a tenth of a small GET's cost. Without ``LOG_FILE``
(stderr), and where :func:`configure_logging` was not called (tests), the request line
goes through structlog like the others.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import logging
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any, TextIO

import anyio
import structlog

__all__ = [
    "FLUSH_INTERVAL",
    "RequestWriter",
    "configure_logging",
    "flushing",
    "request_logger",
    "request_writer",
]

FLUSH_INTERVAL = 0.2
"""At most this many seconds between a request's answer and its log line reaching the file."""

RequestWriter = Callable[[dict[str, Any]], None]

_UTC = datetime.UTC
_encode = json.JSONEncoder(ensure_ascii=True, default=str).encode
_file: TextIO | None = None  # the buffered LOG_FILE, when configured
_request_enabled = True  # LOG_LEVEL lets INFO through


def configure_logging(level: str = "INFO", log_file: Path | None = None) -> None:
    """Send storykit's and the stdlib's logs to ``log_file`` (or stderr) as JSON lines."""
    global _file, _request_enabled
    # Block-buffered: every line but the request line is flushed at once by its writer
    # (structlog's WriteLogger, the stdlib's StreamHandler); request lines by flushing().
    stream = open(log_file, "a", encoding="utf-8") if log_file else sys.stderr  # noqa: SIM115
    _file = stream if log_file else None
    _request_enabled = logging.getLevelName(level) <= logging.INFO
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


def request_writer(log: Any) -> RequestWriter | None:
    """How to write a request's line now: straight into the log file, through ``log``
    (structlog) when there is none, or None when ``LOG_LEVEL`` leaves INFO out."""
    if not _request_enabled:
        return None
    out = _file
    if out is None or out.closed:  # not configured, or its file closed since (tests)
        return lambda fields: log.info("request", **fields)
    write = out.write

    def write_line(fields: dict[str, Any]) -> None:
        fields["event"] = "request"
        fields["level"] = "info"
        fields["timestamp"] = datetime.datetime.now(tz=_UTC).isoformat().replace("+00:00", "Z")
        write(_encode(fields) + "\n")

    return write_line


@contextlib.asynccontextmanager
async def flushing(interval: float = FLUSH_INTERVAL) -> AsyncIterator[None]:
    """Flush the log file's buffered request lines every ``interval`` seconds, and once more
    at the end."""
    out = _file

    async def flush_forever() -> None:
        while True:
            await anyio.sleep(interval)
            _flush(out)

    if out is None:
        yield
        return
    async with anyio.create_task_group() as tg:
        tg.start_soon(flush_forever)
        try:
            yield
        finally:
            tg.cancel_scope.cancel()
            _flush(out)


def _flush(out: TextIO | None) -> None:
    with contextlib.suppress(ValueError, OSError):  # closed by a later configure_logging
        if out is not None:
            out.flush()
