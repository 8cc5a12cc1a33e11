"""How the PostgreSQL store talks to the server from async code, on asyncio and on trio.

The store needs what it needs from SQLite (see :mod:`._driver`): a connection of
its own for a transaction, driven one statement at a time (``execute`` returning
all rows, ``executemany``), plus reads on any connection. ``execute`` also takes
several statements without parameters in one string (one round trip), and returns
the rows of the last one that has any; and one thing more,
``copy`` (``COPY … FROM STDIN``) to append events. So a :class:`Pool` hands out
:class:`Connection` objects for transactions, and runs single-statement reads
itself.

- **asyncio: psycopg's async API**, pooled by ``psycopg_pool.AsyncConnectionPool``.
- **trio (and anything else): sync psycopg connections in anyio worker threads**,
  pooled by ``psycopg_pool.ConnectionPool`` (its own maintenance threads never
  touch the event loop). psycopg's async API cannot run on trio, and neither can
  asyncpg: both need the running asyncio loop ("no running event loop"). A read
  borrows a connection, runs its statement and returns the connection in one
  worker-thread call. A transaction's connection is driven through
  ``to_thread.run_sync`` behind a ``CapacityLimiter(1)``, so it runs one statement
  at a time and may hop between pool threads but is never used by two at once:
  the same split the SQLite driver makes. ``to_thread.run_sync`` is not abandoned
  on cancellation, so a statement always finishes before its caller sees the
  cancellation, and a borrowed connection always goes back to the pool.

Every connection is in autocommit mode: the store issues ``BEGIN``/``COMMIT``
itself, and a read is its own statement, never left idle in a transaction. The
pool checks a connection (one empty round trip) before handing it out, so after a
server restart or failover no caller is given a dead one.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Sequence
from typing import Any, Protocol

import anyio
import anyio.to_thread
import psycopg
import sniffio
from psycopg.conninfo import conninfo_to_dict
from psycopg_pool import AsyncConnectionPool, ConnectionPool

from storykit.store._driver import Driver, Row

__all__ = [
    "CHANNEL",
    "LISTEN_APPLICATION",
    "Connection",
    "Listener",
    "Pool",
    "connect",
    "is_unavailable",
    "listen",
    "open_pool",
    "rollback",
]

# A writer waiting longer than this for another transaction's lock (the event
# counter, a row) fails its batch instead of hanging: SQLite's busy_timeout.
_LOCK_TIMEOUT_MS = 5000
# How long start-up waits for the pool's first connections.
_OPEN_TIMEOUT = 10.0
# libpq waits forever for a host that drops packets unless told otherwise.
_CONNECT_TIMEOUT = 10
# How long a read or a batch waits for a pooled connection before it fails (the
# database gone, or every connection busy): a request fails instead of hanging.
_ACQUIRE_TIMEOUT = 5.0
# The channel every commit notifies with the new head id; the name the listening
# connection shows in pg_stat_activity.
CHANNEL = "storykit_events"
LISTEN_APPLICATION = "storykit-listen"
_LISTEN = f"LISTEN {CHANNEL}"
# On trio a worker thread waits for a notification this long at a time, so closing
# the store waits at most this long for it.
_THREAD_WAIT = 0.25


class Connection(Driver, Protocol):
    async def copy(self, sql: str, rows: Sequence[Sequence[object]]) -> None:
        """Run ``COPY … FROM STDIN`` with these rows: the cheapest bulk insert."""


class Listener(Protocol):
    """A connection of its own that LISTENs on :data:`CHANNEL`."""

    async def wait(self, seconds: float) -> bool:
        """Wait up to ``seconds`` for a notification; True if one came."""

    async def check(self) -> None:
        """One round trip; raises :class:`psycopg.Error` if the connection is dead."""

    async def aclose(self) -> None:
        """Close the connection; never raises."""


class Pool(Protocol):
    async def fetch(
        self, sql: str, params: Sequence[object] = (), *, pool_wait: float = _ACQUIRE_TIMEOUT
    ) -> list[Row]:
        """Run one statement on any pooled connection (waiting at most ``pool_wait``
        seconds for one); return all its rows."""

    async def acquire(self) -> Connection:
        """A connection of one's own (for a transaction) until :meth:`release`."""

    async def release(self, db: Connection) -> None:
        """Give back what :meth:`acquire` returned; never raises."""

    async def aclose(self) -> None:
        """Close every connection."""


def _kwargs(conninfo: str) -> dict[str, Any]:
    kwargs: dict[str, Any] = {"autocommit": True}
    if "connect_timeout" not in conninfo_to_dict(conninfo):
        kwargs["connect_timeout"] = _CONNECT_TIMEOUT
    return kwargs


async def connect(conninfo: str) -> Connection:
    """A connection of its own, outside any pool (for the schema migration)."""
    if sniffio.current_async_library() == "asyncio":
        return _AsyncDriver(await psycopg.AsyncConnection.connect(conninfo, **_kwargs(conninfo)))
    opener = functools.partial(psycopg.connect, conninfo, **_kwargs(conninfo))
    return _ThreadDriver(await anyio.to_thread.run_sync(opener))


async def open_pool(conninfo: str, *, max_size: int) -> Pool:
    """A pool of 1 to ``max_size`` connections, its first connection made."""
    if sniffio.current_async_library() == "asyncio":
        return await _AsyncPool.open(conninfo, max_size=max_size)
    return await _ThreadPool.open(conninfo, max_size=max_size)


async def listen(conninfo: str) -> Listener:
    """A new connection, outside the pool, listening on :data:`CHANNEL`.

    Never a connection through a transaction pooler (PgBouncer in transaction mode):
    LISTEN needs a session of its own. ``DATABASE_URL`` must reach PostgreSQL, or a
    session pooler.
    """
    kwargs = _kwargs(conninfo) | {"application_name": LISTEN_APPLICATION}
    if sniffio.current_async_library() == "asyncio":
        conn = await psycopg.AsyncConnection.connect(conninfo, **kwargs)
        try:
            await conn.execute(_LISTEN)
        except BaseException:
            with anyio.CancelScope(shield=True):
                await conn.close()
            raise
        return _AsyncListener(conn)
    opener = functools.partial(_listen_sync, conninfo, kwargs)
    return _ThreadListener(await anyio.to_thread.run_sync(opener))


def _listen_sync(conninfo: str, kwargs: dict[str, Any]) -> psycopg.Connection[Any]:
    conn = psycopg.connect(conninfo, **kwargs)
    try:
        conn.execute(_LISTEN)
    except BaseException:
        conn.close()
        raise
    return conn


def is_unavailable(exc: BaseException) -> bool:
    """Whether ``exc`` means the database cannot be reached (rather than refusing a statement).

    No connection to be had (refused, timed out, the pool's wait ran out: no
    SQLSTATE), a connection lost (class 08) or ended by the server (57P: shutdown,
    ``pg_terminate_backend``, the database refusing connections).
    """
    if not isinstance(exc, psycopg.OperationalError):
        return False
    state = exc.sqlstate
    return state is None or state.startswith(("08", "57P"))


async def rollback(db: Driver) -> None:
    """Roll back whatever transaction is open, even in a cancelled scope; never raises.

    Shielded because the usual caller is unwinding from a cancellation, and a
    connection left inside a transaction holds its locks.
    """
    with anyio.CancelScope(shield=True):
        # An error means the connection is gone, and its transaction with it.
        with contextlib.suppress(psycopg.Error):
            await db.execute("ROLLBACK")


# -- asyncio -------------------------------------------------------------------------


class _AsyncDriver:
    def __init__(self, conn: psycopg.AsyncConnection[Row]) -> None:
        self.conn = conn

    async def execute(self, sql: str, params: Sequence[object] = ()) -> list[Row]:
        cursor = await self.conn.execute(sql, params or None)
        rows: list[Row] = []
        while True:  # several statements (without params): the last one's rows
            if cursor.description is not None:
                rows = await cursor.fetchall()
            if not cursor.nextset():
                return rows

    async def executemany(self, sql: str, rows: Sequence[Sequence[object]]) -> None:
        async with self.conn.cursor() as cursor:
            await cursor.executemany(sql, rows)

    async def copy(self, sql: str, rows: Sequence[Sequence[object]]) -> None:
        async with self.conn.cursor() as cursor, cursor.copy(sql) as copy:
            for row in rows:
                await copy.write_row(row)

    async def aclose(self) -> None:
        await self.conn.close()


async def _configure_async(conn: psycopg.AsyncConnection[Any]) -> None:
    await conn.execute(f"SET lock_timeout = {_LOCK_TIMEOUT_MS}")


class _AsyncPool:
    def __init__(self, pool: AsyncConnectionPool[psycopg.AsyncConnection[Row]]) -> None:
        self._pool = pool

    @classmethod
    async def open(cls, conninfo: str, *, max_size: int) -> _AsyncPool:
        pool = AsyncConnectionPool(
            conninfo,
            kwargs=_kwargs(conninfo),
            min_size=1,
            max_size=max_size,
            configure=_configure_async,
            check=AsyncConnectionPool.check_connection,
            open=False,
        )
        try:
            await pool.open(wait=True, timeout=_OPEN_TIMEOUT)
        except BaseException:
            with anyio.CancelScope(shield=True):
                await pool.close()
            raise
        return cls(pool)

    async def fetch(
        self, sql: str, params: Sequence[object] = (), *, pool_wait: float = _ACQUIRE_TIMEOUT
    ) -> list[Row]:
        async with self._pool.connection(timeout=pool_wait) as conn:
            cursor = await conn.execute(sql, params or None)
            return await cursor.fetchall()

    async def acquire(self) -> Connection:
        return _AsyncDriver(await self._pool.getconn(timeout=_ACQUIRE_TIMEOUT))

    async def release(self, db: Connection) -> None:
        assert isinstance(db, _AsyncDriver)
        with anyio.CancelScope(shield=True):
            await self._pool.putconn(db.conn)

    async def aclose(self) -> None:
        with anyio.CancelScope(shield=True):
            await self._pool.close()


# -- trio (worker threads) ---------------------------------------------------------


def _fetchall(conn: psycopg.Connection[Row], sql: str, params: Sequence[object]) -> list[Row]:
    cursor = conn.execute(sql, params or None)
    rows: list[Row] = []
    while True:  # several statements (without params): the last one's rows
        if cursor.description is not None:
            rows = cursor.fetchall()
        if not cursor.nextset():
            return rows


def _executemany(conn: psycopg.Connection[Row], sql: str, rows: Sequence[Sequence[object]]) -> None:
    with conn.cursor() as cursor:
        cursor.executemany(sql, rows)


def _copy(conn: psycopg.Connection[Row], sql: str, rows: Sequence[Sequence[object]]) -> None:
    with conn.cursor() as cursor, cursor.copy(sql) as copy:
        for row in rows:
            copy.write_row(row)


def _pooled_fetch(
    pool: ConnectionPool[psycopg.Connection[Row]],
    sql: str,
    params: Sequence[object],
    timeout: float,
) -> list[Row]:
    with pool.connection(timeout=timeout) as conn:
        return conn.execute(sql, params or None).fetchall()


class _ThreadDriver:
    def __init__(self, conn: psycopg.Connection[Row]) -> None:
        self.conn = conn
        self._limiter = anyio.CapacityLimiter(1)

    async def execute(self, sql: str, params: Sequence[object] = ()) -> list[Row]:
        return await anyio.to_thread.run_sync(
            _fetchall, self.conn, sql, params, limiter=self._limiter
        )

    async def executemany(self, sql: str, rows: Sequence[Sequence[object]]) -> None:
        await anyio.to_thread.run_sync(_executemany, self.conn, sql, rows, limiter=self._limiter)

    async def copy(self, sql: str, rows: Sequence[Sequence[object]]) -> None:
        await anyio.to_thread.run_sync(_copy, self.conn, sql, rows, limiter=self._limiter)

    async def aclose(self) -> None:
        await anyio.to_thread.run_sync(self.conn.close, limiter=self._limiter)


def _configure_sync(conn: psycopg.Connection[Any]) -> None:
    conn.execute(f"SET lock_timeout = {_LOCK_TIMEOUT_MS}")


class _ThreadPool:
    def __init__(self, pool: ConnectionPool[psycopg.Connection[Row]]) -> None:
        self._pool = pool

    @classmethod
    async def open(cls, conninfo: str, *, max_size: int) -> _ThreadPool:
        pool = ConnectionPool(
            conninfo,
            kwargs=_kwargs(conninfo),
            min_size=1,
            max_size=max_size,
            configure=_configure_sync,
            check=ConnectionPool.check_connection,
            open=False,
        )
        try:
            await anyio.to_thread.run_sync(
                functools.partial(pool.open, wait=True, timeout=_OPEN_TIMEOUT)
            )
        except BaseException:
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(pool.close)
            raise
        return cls(pool)

    async def fetch(
        self, sql: str, params: Sequence[object] = (), *, pool_wait: float = _ACQUIRE_TIMEOUT
    ) -> list[Row]:
        return await anyio.to_thread.run_sync(_pooled_fetch, self._pool, sql, params, pool_wait)

    async def acquire(self) -> Connection:
        getconn = functools.partial(self._pool.getconn, timeout=_ACQUIRE_TIMEOUT)
        return _ThreadDriver(await anyio.to_thread.run_sync(getconn))

    async def release(self, db: Connection) -> None:
        assert isinstance(db, _ThreadDriver)
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(self._pool.putconn, db.conn)

    async def aclose(self) -> None:
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(self._pool.close)


# -- LISTEN ---------------------------------------------------------------------------


class _AsyncListener:
    def __init__(self, conn: psycopg.AsyncConnection[Any]) -> None:
        self.conn = conn

    async def wait(self, seconds: float) -> bool:
        came = False
        # Run the generator to its end (stop_after): left suspended, it would hold
        # the connection's lock. Notifications between calls are kept for the next.
        async for _ in self.conn.notifies(timeout=seconds, stop_after=1):
            came = True
        return came

    async def check(self) -> None:
        await self.conn.execute("SELECT 1")

    async def aclose(self) -> None:
        with anyio.CancelScope(shield=True), contextlib.suppress(psycopg.Error):
            await self.conn.close()


def _wait_sync(conn: psycopg.Connection[Any], timeout: float) -> bool:
    came = False
    for _ in conn.notifies(timeout=timeout, stop_after=1):
        came = True
    return came


class _ThreadListener:
    """The sync connection waits in a worker thread, a short while at a time, so
    cancelling the waiter (closing the store) takes at most ``_THREAD_WAIT``."""

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self.conn = conn
        self._limiter = anyio.CapacityLimiter(1)

    async def wait(self, seconds: float) -> bool:
        deadline = anyio.current_time() + seconds
        while True:
            left = deadline - anyio.current_time()
            if left <= 0:
                return False
            chunk = min(left, _THREAD_WAIT)
            if await anyio.to_thread.run_sync(_wait_sync, self.conn, chunk, limiter=self._limiter):
                return True

    async def check(self) -> None:
        await anyio.to_thread.run_sync(self.conn.execute, "SELECT 1", limiter=self._limiter)

    async def aclose(self) -> None:
        with anyio.CancelScope(shield=True), contextlib.suppress(psycopg.Error):
            await anyio.to_thread.run_sync(self.conn.close, limiter=self._limiter)
