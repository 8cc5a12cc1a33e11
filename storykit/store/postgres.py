"""The shared store: PostgreSQL, for several replicas, on asyncio and on trio.

Chosen by ``DATABASE_URL`` (see :func:`storykit.store.open_store`); it answers
exactly as :class:`~storykit.store.sqlite.SqliteStore` does, and the same test
suite runs on both. Use it as an async context manager (or call :meth:`open` and
:meth:`aclose` from the same task)::

    async with PostgresStore("postgresql://storykit@db/storykit") as store:
        event = await store.write("suggest.submitted", {...}, suggestions=[s])

- :meth:`open` migrates the schema (one advisory lock, so replicas starting at
  once migrate it once, see :mod:`._pg_schema`), then opens a connection pool.
- **Writes** are group-committed as on SQLite: every :meth:`write` is queued to
  one writer task (:mod:`._writer`), which commits everything queued in one
  transaction on a pooled connection (:mod:`._pg_batch`). Event ids come from a counter row that
  each transaction locks, so across every replica they are handed out, and
  become visible, in commit order with no holes.
- **Reads** run on any pooled connection, each its own statement, and see the
  last committed state.
- **Notifications**: every commit sends ``NOTIFY storykit_events`` with the new
  head id. :meth:`watch` keeps one connection of its own listening and calls back
  on each one (the event bus's :meth:`~storykit.events.EventBus.nudge`), so a
  replica's subscribers get another replica's events at once instead of at the
  next poll. A lost listen connection is re-made with backoff (the poll covers the
  meantime) and the callback called once it is back: what was missed is in the log.
- **The database gone**: reads and writes fail fast with
  :class:`~storykit.errors.Unavailable` (503), :meth:`ping` answers False, and
  everything recovers by itself when it is back (the pool checks connections).

How the store drives psycopg on asyncio and on trio is in :mod:`._pg_driver`.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from datetime import UTC, datetime
from types import TracebackType
from typing import Any

import anyio
import psycopg
from anyio.abc import TaskGroup

from storykit import tickets
from storykit.auth import Principal
from storykit.errors import BackendError, Unavailable
from storykit.idempotency import IdempotentResult
from storykit.models import Event, Plan, Revision, Suggestion
from storykit.store import _pg_schema
from storykit.store._batch import PendingWrite, prepare
from storykit.store._driver import Row
from storykit.store._pg_batch import commit_batch, fail
from storykit.store._pg_driver import (
    Connection,
    Pool,
    connect,
    is_unavailable,
    listen,
    open_pool,
    rollback,
)
from storykit.store._reads import DocumentReads
from storykit.store._values import event_id as _event_id
from storykit.store._values import limit as _limit
from storykit.store._writer import GroupWriter

__all__ = ["PostgresStore"]

log = logging.getLogger(__name__)

# How long a health check waits for the database.
_PING_TIMEOUT = 2.0
# The listen connection: a round trip after this long without a notification, to
# notice a connection that died silently; backoff between attempts to re-make it.
_LISTEN_CHECK = 30.0
_RETRY_FIRST, _RETRY_MAX = 0.1, 5.0


class PostgresStore(DocumentReads):
    """The :class:`~storykit.store.Store` on one PostgreSQL database."""

    PARAM = "%s"

    def __init__(self, conninfo: str, *, max_batch: int = 1000, pool_size: int = 10) -> None:
        """``conninfo``: a ``postgresql://`` URL or a libpq ``key=value`` string.

        ``pool_size`` connections at most: one for the writer while it commits a
        batch, the rest for reads.
        """
        if not conninfo:
            raise ValueError("PostgresStore needs a connection string (postgresql://…)")
        if pool_size < 2:
            raise ValueError("pool_size must be at least 2: one writer, one reader")
        self.conninfo = conninfo
        self.max_batch = max_batch
        self.pool_size = pool_size
        self._epoch: str | None = None
        self.migrated_from: int | None = None
        """The schema version :meth:`open` found (0: a fresh database), None before."""
        self._pool: Pool | None = None
        self._db: Connection | None = None  # the writer's, while writes keep coming
        self._task_group: TaskGroup | None = None
        self._listening: anyio.CancelScope | None = None  # made in open(): needs a loop
        self._writer = self._new_writer()

    def _new_writer(self) -> GroupWriter:
        return GroupWriter(self._commit, max_batch=self.max_batch, idle=self._release)

    @property
    def transactions(self) -> int:
        """Write transactions committed so far (fewer than :attr:`writes` under load)."""
        return self._writer.transactions

    @property
    def writes(self) -> int:
        """Writes that committed (each appended one event)."""
        return self._writer.writes

    # -- lifecycle -------------------------------------------------------------
    async def open(self) -> None:
        if self._task_group is not None:
            raise RuntimeError("the store is already open")
        try:
            self.migrated_from = await _migrate(self.conninfo)
            self._pool = await open_pool(self.conninfo, max_size=self.pool_size)
            [(epoch,)] = await self._read("SELECT epoch FROM meta WHERE id = 1")
            self._epoch = str(epoch)
            task_group = anyio.create_task_group()
            await task_group.__aenter__()
        except psycopg.Error as exc:
            await self._close_pool()
            raise BackendError(
                f"cannot open the PostgreSQL database: {exc}; check DATABASE_URL "
                "and that the server is up"
            ) from exc
        except BaseException:
            await self._close_pool()
            raise
        self._writer = self._new_writer()
        self._listening = anyio.CancelScope()
        self._task_group = task_group
        task_group.start_soon(self._writer.run)

    async def aclose(self) -> None:
        task_group, self._task_group = self._task_group, None
        if task_group is None:
            return
        if self._listening is not None:
            self._listening.cancel()
        self._writer.close()  # the writer drains the queue, then returns
        try:
            await task_group.__aexit__(None, None, None)
        finally:
            await self._close_pool()

    async def __aenter__(self) -> PostgresStore:
        await self.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def _close_pool(self) -> None:
        await self._release()
        pool, self._pool = self._pool, None
        if pool is not None:
            await pool.aclose()  # shielded: a leaked pool keeps threads and connections

    async def ping(self) -> bool:
        """True if the database answers within a couple of seconds."""
        with anyio.move_on_after(_PING_TIMEOUT * 2):  # the pool's wait is the first bound
            try:
                return await self._read("SELECT 1", pool_wait=_PING_TIMEOUT) == [(1,)]
            except (BackendError, RuntimeError):
                return False
        return False

    # -- notifications -------------------------------------------------------------
    def watch(self, on_notify: Callable[[], object]) -> None:
        """Call ``on_notify()`` whenever any replica commits events, until :meth:`aclose`.

        Runs a listener on a connection of its own (see the module docstring); the
        callback runs on the event loop's thread and must not block.
        """
        if self._task_group is None:
            raise RuntimeError("the store is not open")
        self._task_group.start_soon(self._listen, on_notify)

    async def _listen(self, on_notify: Callable[[], object]) -> None:
        delay = _RETRY_FIRST
        assert self._listening is not None  # made by open(), before watch() can run
        with self._listening:
            while True:
                try:
                    listener = await listen(self.conninfo)
                except (psycopg.Error, OSError) as exc:
                    log.warning("cannot listen for events (%s); retrying in %.1fs", exc, delay)
                else:
                    try:
                        delay = _RETRY_FIRST
                        on_notify()  # what committed while no one listened is in the log
                        while True:
                            if await listener.wait(_LISTEN_CHECK):
                                on_notify()
                            else:
                                await listener.check()
                    except (psycopg.Error, OSError) as exc:
                        log.warning(
                            "the listen connection failed (%s); re-making it in %.1fs,"
                            " the event bus polls meanwhile",
                            exc,
                            delay,
                        )
                    finally:
                        await listener.aclose()
                await anyio.sleep(delay)
                delay = min(delay * 2, _RETRY_MAX)

    # -- reads -------------------------------------------------------------------
    async def _read(
        self, sql: str, params: Sequence[object] = (), *, pool_wait: float | None = None
    ) -> list[Row]:
        if self._pool is None:
            raise RuntimeError("the store is not open")
        try:
            if pool_wait is None:
                return await self._pool.fetch(sql, params)
            return await self._pool.fetch(sql, params, pool_wait=pool_wait)
        except psycopg.Error as exc:
            if is_unavailable(exc):
                raise Unavailable(f"the database is unavailable ({exc}); retry later") from exc
            raise BackendError(f"database read failed: {exc}") from exc

    async def read_events(self, *, after: int = 0, limit: int = 100) -> list[Event]:
        rows = await self._read(_READ_EVENTS, (_event_id(after), _limit(limit)))
        return _events(rows)

    async def last_event_id(self) -> int:
        [(last,)] = await self._read("SELECT COALESCE(MAX(id), 0) FROM events")
        return int(last)

    # -- shared state: tickets, observer progress, rate limits --------------------------
    async def issue_ticket(self, principal: Principal, ttl: float) -> str:
        ticket = tickets.new_ticket()
        await self._read(
            "WITH purge AS (DELETE FROM sse_tickets WHERE expires_at <= now())"
            " INSERT INTO sse_tickets (digest, principal, role, expires_at)"
            " VALUES (%s, %s, %s, now() + make_interval(secs => %s)) RETURNING 1",
            (tickets.digest(ticket), principal.name, str(principal.role), float(ttl)),
        )
        return ticket

    async def redeem_ticket(self, ticket: str) -> Principal | None:
        rows = await self._read(
            "DELETE FROM sse_tickets WHERE digest = %s"
            " RETURNING principal, role, expires_at > now()",
            (tickets.digest(ticket),),
        )
        if not rows or not rows[0][2]:
            return None
        return tickets.principal(rows[0][0], rows[0][1])

    async def record_delivery(self, forge: str, delivery: str) -> bool:
        rows = await self._read(
            "WITH purge AS (DELETE FROM webhook_deliveries"
            " WHERE received_at <= now() - interval '30 days')"
            " INSERT INTO webhook_deliveries (forge, delivery) VALUES (%s, %s)"
            " ON CONFLICT (forge, delivery) DO NOTHING RETURNING 1",
            (forge, delivery),
        )
        return bool(rows)

    async def ensure_cursors(self, observers: Sequence[str]) -> None:
        for name in observers:
            await self._read(
                "INSERT INTO observer_cursors (name, last_id)"
                " SELECT %s, COALESCE(MAX(id), 0) FROM events"
                " ON CONFLICT (name) DO NOTHING RETURNING 1",
                (name,),
            )

    @contextlib.asynccontextmanager
    async def claim_events(
        self, observer: str, *, limit: int = 100, lease: float = 30.0
    ) -> AsyncIterator[list[Event] | None]:
        """See :meth:`storykit.store.Store.claim_events`: here a row lock.

        The cursor row is locked ``FOR UPDATE SKIP LOCKED`` in a transaction held
        while the caller runs the observer, and advanced in it before ``COMMIT``: a
        replica that finds the row locked skips it. If the process dies, PostgreSQL
        ends its transaction, and the batch goes to the next replica that claims it.
        ``lease`` is SQLite's; the lock lasts as long as the transaction.
        """
        if self._pool is None:
            raise RuntimeError("the store is not open")
        try:
            db = await self._pool.acquire()
        except psycopg.Error as exc:
            raise BackendError(f"database read failed: {exc}") from exc
        try:
            try:
                await db.execute("BEGIN")
                rows = await db.execute(
                    "SELECT last_id FROM observer_cursors WHERE name = %s FOR UPDATE SKIP LOCKED",
                    (observer,),
                )
                events = (
                    _events(await db.execute(_READ_EVENTS, (int(rows[0][0]), _limit(limit))))
                    if rows
                    else None
                )
            except psycopg.Error as exc:
                await rollback(db)
                raise BackendError(f"database read failed: {exc}") from exc
            try:
                yield events
            except BaseException:
                await rollback(db)
                raise
            # The observer has run these events: a shutdown now must not roll the cursor
            # back, or another process would run them again.
            with anyio.CancelScope(shield=True):
                try:
                    if events:
                        await db.execute(
                            "UPDATE observer_cursors SET last_id = %s WHERE name = %s",
                            (events[-1].id, observer),
                        )
                    await db.execute("COMMIT")
                except psycopg.Error as exc:
                    await rollback(db)
                    raise BackendError(f"database write failed: {exc}") from exc
        finally:
            with anyio.CancelScope(shield=True):
                await self._pool.release(db)

    async def gcra(self, key: str, interval: float, tolerance: float) -> tuple[bool, float, float]:
        """One GCRA step for ``key`` by the server's clock: (allowed, new TAT, now).

        One statement, so replicas racing on one key are serialised on its row.
        """
        [(allowed, tat, now)] = await self._read(
            _GCRA, (key, interval, tolerance, interval, tolerance)
        )
        return bool(allowed), float(tat), float(now)

    # -- writes ------------------------------------------------------------------
    async def write(
        self,
        event_type: str,
        data: Mapping[str, Any],
        *,
        suggestions: Sequence[Suggestion] = (),
        plans: Sequence[Plan] = (),
        policy_config: Mapping[str, Any] | None = None,
        expect: Mapping[str, datetime] | None = None,
        policy_expect: Mapping[str, Any] | None = None,
        idempotency: IdempotentResult | None = None,
        delivery: tuple[str, str] | None = None,
        revisions: Sequence[Revision] = (),
    ) -> Event:
        """See :meth:`storykit.store.Store.write`.

        If the caller is cancelled before the writer took its write, the write is
        withdrawn; after that it commits (or fails) without the caller: its event
        still reaches subscribers through the event bus's catch-up from the log.
        """
        if self._task_group is None or self._writer.closing:
            raise RuntimeError("the store is not open")
        pending = prepare(
            event_type,
            data,
            suggestions=suggestions,
            plans=plans,
            policy_config=policy_config,
            expect=expect,
            policy_expect=policy_expect,
            idempotency=idempotency,
            delivery=delivery,
            revisions=revisions,
        )
        return await self._writer.submit(pending)

    async def _commit(self, batch: Sequence[PendingWrite]) -> bool:
        # The writer keeps its connection from batch to batch while writes keep
        # coming, and gives it back when the queue runs dry (or a batch fails: the
        # connection may be dead). So under load a batch costs no trip to the pool,
        # and a connection that sat idle is checked by the pool before it is used.
        assert self._pool is not None
        if self._db is None:
            try:
                self._db = await self._pool.acquire()
            except Exception as exc:  # no connection to be had: the server is down, say
                fail(batch, exc)
                return False
        committed = await commit_batch(self._db, batch)
        if not committed:
            await self._release()
        return committed

    async def _release(self) -> None:
        db, self._db = self._db, None
        if db is not None and self._pool is not None:
            await self._pool.release(db)


_READ_EVENTS = "SELECT id, type, at, data FROM events WHERE id > %s ORDER BY id LIMIT %s"

# GCRA as one upsert. The clock is read once (``now``, stored as ``seen``), so every
# expression agrees on it. SET expressions see the row as it was: the TAT moves one
# interval past max(old TAT, now) if that lies within the tolerance, else stays;
# ``allowed`` records which (RETURNING sees only the new row). Parameters: key,
# interval, tolerance, interval, tolerance.
_GCRA = """
    INSERT INTO rate_limits AS r (key, tat, seen, allowed)
    SELECT %s, c.now + %s::float8, c.now, true
    FROM (SELECT extract(epoch FROM clock_timestamp())::float8 AS now) AS c
    ON CONFLICT (key) DO UPDATE SET
        tat = CASE WHEN greatest(r.tat, excluded.seen) - %s::float8 <= excluded.seen + 1e-9
                   THEN greatest(r.tat, excluded.seen) + %s::float8
                   ELSE r.tat END,
        allowed = greatest(r.tat, excluded.seen) - %s::float8 <= excluded.seen + 1e-9,
        seen = excluded.seen
    RETURNING allowed, tat, seen
"""


def _events(rows: Sequence[Row]) -> list[Event]:
    return [
        Event(id=int(i), type=str(t), at=at.astimezone(UTC), data=json.loads(data))
        for i, t, at, data in rows
    ]


async def _migrate(conninfo: str) -> int:
    # A connection of its own, outside the pool: it has no lock_timeout, so a
    # replica waits for another one's migration however long that takes.
    db = await connect(conninfo)
    try:
        return await _pg_schema.migrate(db)
    finally:
        with anyio.CancelScope(shield=True):
            await db.aclose()
