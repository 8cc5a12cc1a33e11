"""A status line on stderr for long work (``suggest generate``).

On a terminal the line is redrawn in place; elsewhere nothing is shown unless
``--progress`` asks for it, and then each update is its own line (for CI logs).
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from typing import Any, TextIO

import click

__all__ = ["StatusLine", "describe"]

_BAR = 20


def describe(info: Mapping[str, Any]) -> str:
    """``ruff  [#####·····]  10/40  checking`` from a ``suggest.progress`` event's data."""
    parts = [str(info.get("source") or "working")]
    done, total = info.get("done"), info.get("total")
    if isinstance(done, int) and isinstance(total, int) and total > 0:
        filled = min(_BAR, _BAR * done // total)
        parts.append("[" + "#" * filled + "·" * (_BAR - filled) + "]")
        parts.append(f"{done}/{total}")
    elif isinstance(done, int):
        parts.append(str(done))
    for key in ("stage", "message"):
        if info.get(key):
            parts.append(str(info[key]))
    return "  ".join(parts)


class StatusLine:
    def __init__(self, *, live: bool, lines: bool, stream: TextIO | None = None) -> None:
        self.stream = stream or click.get_text_stream("stderr")
        self.live = live  # redraw one line in place (a terminal)
        self.lines = lines and not live  # one line per update
        self._drawn = False

    @classmethod
    def for_stderr(cls, requested: bool | None) -> StatusLine | None:
        """The status line ``--progress/--no-progress`` asks for (None: only on a terminal)."""
        stream = click.get_text_stream("stderr")
        tty = stream.isatty()
        if requested is False or (requested is None and not tty):
            return None
        return cls(live=tty, lines=True, stream=stream)

    def update(self, info: Mapping[str, Any]) -> None:
        text = describe(info)
        if self.live:
            width = shutil.get_terminal_size((100, 24)).columns - 1
            self.stream.write("\r\x1b[K" + text[:width])
            self.stream.flush()
            self._drawn = True
        elif self.lines:
            click.echo(text, file=self.stream)

    def close(self) -> None:
        if self._drawn:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
            self._drawn = False
