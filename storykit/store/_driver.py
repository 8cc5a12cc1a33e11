"""How the store talks to SQLite from async code, on asyncio and on trio.

A ``sqlite3.Connection`` blocks and must never be used by two threads at once, so
every statement runs on a worker thread, one at a time per connection. The store
needs only two operations (``execute`` returning all rows, and ``executemany``),
so that is the whole driver interface; the store is written so that a batch of
writes costs a handful of statements whatever its size, which keeps the
per-statement thread hop cheap.

- **asyncio: aiosqlite.** It owns a dedicated thread per connection and resolves
  asyncio futures from it. Its public API is statement-level (there is no public
  "run this function on your thread"), which is why the driver is statement-level
  too: the alternative, its private ``_execute``, would tie us to its internals.
- **trio (and anything else): anyio worker threads.** aiosqlite cannot work on
  trio: it calls ``asyncio.get_event_loop()`` and completes asyncio futures, and
  trio has no asyncio loop. Instead each statement is a
  ``anyio.to_thread.run_sync`` call behind a ``CapacityLimiter(1)``. The limiter
  is what makes it correct: calls on one connection are strictly serialised, so
  the connection may hop between pool threads (``check_same_thread=False``) but is
  never used concurrently. A dedicated thread would also work but needs a
  thread-to-trio wake-up channel of its own; anyio's pool already is one.
  ``to_thread.run_sync`` is not abandoned on cancellation, so a statement always
  finishes before its caller sees the cancellation.
"""

from __future__ import annotations

import contextlib
import functools
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol, cast

import anyio
import anyio.to_thread
import sniffio

__all__ = ["Driver", "Row", "connect", "rollback"]

Row = tuple[Any, ...]


class Driver(Protocol):
    async def execute(self, sql: str, params: Sequence[object] = ()) -> list[Row]:
        """Run one statement; return all its rows (none for most writes)."""

    async def executemany(self, sql: str, rows: Sequence[Sequence[object]]) -> None:
        """Run one statement once per parameter row."""

    async def aclose(self) -> None:
        """Close the connection."""


async def connect(path: Path) -> Driver:
    """A connection in autocommit mode (the store issues BEGIN/COMMIT itself)."""
    if sniffio.current_async_library() == "asyncio":
        return await _AiosqliteDriver.connect(path)
    return await _ThreadDriver.connect(path)


async def rollback(db: Driver) -> None:
    """Roll back whatever transaction is open, even in a cancelled scope; never raises.

    Shielded because the usual caller is unwinding from a cancellation and a
    connection left inside a transaction would block every other writer.
    """
    with anyio.CancelScope(shield=True):
        # An error means no transaction was open: SQLite had already rolled it back.
        with contextlib.suppress(sqlite3.Error):
            await db.execute("ROLLBACK")


class _AiosqliteDriver:
    def __init__(self, conn: Any) -> None:
        self._conn = conn

    @classmethod
    async def connect(cls, path: Path) -> _AiosqliteDriver:
        import aiosqlite  # only on asyncio; it imports asyncio machinery

        # isolation_level=None: no implicit BEGIN from the sqlite3 module.
        return cls(await aiosqlite.connect(path, isolation_level=None))

    async def execute(self, sql: str, params: Sequence[object] = ()) -> list[Row]:
        # execute_fetchall: one hop to the thread, and no cursor left to close.
        return cast(list[Row], list(await self._conn.execute_fetchall(sql, params)))

    async def executemany(self, sql: str, rows: Sequence[Sequence[object]]) -> None:
        async with self._conn.executemany(sql, rows):
            pass

    async def aclose(self) -> None:
        await self._conn.close()


def _fetchall(conn: sqlite3.Connection, sql: str, params: Sequence[object]) -> list[Row]:
    return conn.execute(sql, params).fetchall()


def _executemany(conn: sqlite3.Connection, sql: str, rows: Sequence[Sequence[object]]) -> None:
    conn.executemany(sql, rows).close()


class _ThreadDriver:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn
        self._limiter = anyio.CapacityLimiter(1)

    @classmethod
    async def connect(cls, path: Path) -> _ThreadDriver:
        opener = functools.partial(
            sqlite3.connect, path, isolation_level=None, check_same_thread=False
        )
        return cls(await anyio.to_thread.run_sync(opener))

    async def execute(self, sql: str, params: Sequence[object] = ()) -> list[Row]:
        return await anyio.to_thread.run_sync(
            _fetchall, self._conn, sql, params, limiter=self._limiter
        )

    async def executemany(self, sql: str, rows: Sequence[Sequence[object]]) -> None:
        await anyio.to_thread.run_sync(_executemany, self._conn, sql, rows, limiter=self._limiter)

    async def aclose(self) -> None:
        await anyio.to_thread.run_sync(self._conn.close, limiter=self._limiter)
