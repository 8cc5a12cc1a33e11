"""Choosing the transport: :class:`Connection` holds the global options, :func:`connect`
opens the transport they ask for (:mod:`storykit_cli.transport`)."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from storykit_cli.transport import Client

__all__ = ["Connection", "connect"]


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class Connection:
    """Where the commands run: the global options that choose the mode."""

    url: str | None = None
    key: str | None = dataclasses.field(default=None, repr=False)
    data_dir: Path | None = None
    on_notice: Callable[[str], None] | None = None
    """Where a command reports what it works around: a lost connection it is retrying, a
    resume point the event log does not have (stderr)."""


@contextlib.asynccontextmanager
async def connect(connection: Connection) -> AsyncIterator[Client]:
    """A client for ``connection``: remote with ``url``, else local."""
    if connection.url:
        from storykit_cli._remote import RemoteTransport

        async with RemoteTransport.open(connection.url, connection.key) as remote:
            yield remote
    else:
        from storykit_cli._local import LocalTransport

        async with LocalTransport.open(connection.data_dir) as local:
            yield local
