"""Logging: the watchdog's own events as JSON lines, and the child's output in a rotating file."""

from __future__ import annotations

import json
import logging
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

__all__ = ["JsonFormatter", "OutputPump", "RotatingWriter", "log_event", "logger"]

logger = logging.getLogger("storykit_watchdog")


def log_event(
    event: str, *, level: int = logging.INFO, exc_info: bool = False, **fields: Any
) -> None:
    """Log one event; ``fields`` become keys of its JSON line."""
    logger.log(level, event, exc_info=exc_info, extra={"fields": fields})


class JsonFormatter(logging.Formatter):
    """``{"at": ..., "level": ..., "event": ..., **fields}`` on one line."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "at": datetime.fromtimestamp(record.created, UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            line.update(fields)
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


class RotatingWriter:
    """Appends bytes to ``path``; when the file would pass ``max_bytes`` it becomes ``path.1``
    (``path.1`` becomes ``path.2``, ...) and at most ``backups`` old files are kept.
    Thread-safe: the output of successive children goes through one writer."""

    def __init__(self, path: Path, *, max_bytes: int, backups: int) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self.backups = backups
        self._lock = threading.Lock()
        self._file: IO[bytes] = path.open("ab")

    def write(self, data: bytes) -> None:
        with self._lock:
            size = self._file.tell()
            if self.max_bytes > 0 and size > 0 and size + len(data) > self.max_bytes:
                self._rotate()
            self._file.write(data)
            self._file.flush()

    def _rotate(self) -> None:
        self._file.close()
        if self.backups > 0:
            for n in range(self.backups - 1, 0, -1):
                older = self.path.with_name(f"{self.path.name}.{n}")
                if older.exists():
                    older.replace(self.path.with_name(f"{self.path.name}.{n + 1}"))
            self.path.replace(self.path.with_name(f"{self.path.name}.1"))
            self._file = self.path.open("ab")
        else:
            self._file = self.path.open("wb")

    def close(self) -> None:
        with self._lock:
            self._file.close()


class OutputPump:
    """A daemon thread that copies a child's output pipe, line by line, into the writer.

    The pipe is always drained, so a chatty child never blocks on a full pipe.
    """

    _MAX_LINE = 64 * 1024

    def __init__(self, pipe: IO[bytes], writer: RotatingWriter, *, name: str) -> None:
        self._pipe = pipe
        self._writer = writer
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            while line := self._pipe.readline(self._MAX_LINE):
                self._writer.write(line)
        except (OSError, ValueError):
            pass  # the pipe or the writer was closed under us at shutdown
        finally:
            self._pipe.close()

    def join(self, timeout: float) -> None:
        """Wait for the rest of the output; a grandchild may hold the pipe open, so bounded."""
        self._thread.join(timeout)
