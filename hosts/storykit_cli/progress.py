"""A status line on stderr for long work (``suggest generate``).

On a terminal the line is redrawn in place; elsewhere nothing is shown unless
``--progress`` asks for it, and then each update is its own line (for CI logs).
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Mapping
from typing import Any

import click

__all__ = ["StatusLine", "describe"]

_BAR = 20


def describe(info: Mapping[str, Any]) -> str:
    """``ruff  [#####·····]  10/40  checking`` from a ``suggest.progress`` event's data."""
    parts = [str(info.get("source") or "working")]
    done, total = info.get("done"), info.get("total")
    if isinstance(done, int) and isinstance(total, int) and total > 0:
        filled = max(0, min(_BAR, _BAR * done // total))
        parts.append("[" + "#" * filled + "·" * (_BAR - filled) + "]")
        parts.append(f"{done}/{total}")
    elif isinstance(done, int):
        parts.append(str(done))
    for key in ("stage", "message"):
        if info.get(key):
            parts.append(str(info[key]))
    return "  ".join(parts)


class StatusLine:
    """``live``: redraw one line in place (a terminal); otherwise one line per update."""

    def __init__(self, *, live: bool) -> None:
        self.live = live
        self._drawn = False

    @classmethod
    def for_stderr(cls, requested: bool | None) -> StatusLine | None:
        """What ``--progress/--no-progress`` asks for; by default only on a terminal."""
        tty = sys.stderr.isatty()
        if requested is False or (requested is None and not tty):
            return None
        return cls(live=tty)

    def update(self, info: Mapping[str, Any]) -> None:
        text = describe(info)
        if self.live:
            width = shutil.get_terminal_size((100, 24)).columns - 1
            click.echo("\r\x1b[K" + text[:width], err=True, nl=False)
            self._drawn = True
        else:
            click.echo(text, err=True)

    def close(self) -> None:
        if self._drawn:
            click.echo("\r\x1b[K", err=True, nl=False)
            self._drawn = False
