"""The embedded store: one SQLite file in WAL mode, on asyncio and on trio.

Use it as an async context manager (or call :meth:`SqliteStore.open` and
:meth:`SqliteStore.aclose` from the same task, as with any anyio task group)::

    async with SqliteStore(path) as store:
        event = await store.write("suggest.submitted", {...}, suggestions=[s])

Two connections:

- the **writer**, owned by one writer task that :meth:`open` starts. Every
  :meth:`write` is queued to it; it takes everything queued and commits it in one
  transaction (group commit, see :mod:`._batch`), then wakes each caller with its
  event or its error. Under load many writes share one transaction, which is what
  makes appending events cheap.
- the **reader**, for every read. It must not be the writer's connection: a read
  there could see a batch that is later rolled back. In WAL mode it reads the last
  committed state without waiting for the writer.

Nothing is counted in memory: event ids come from SQLite inside the write lock,
so several processes (the server and the CLI, say) can share one file.

A third connection, the **side** one, writes what is no event: SSE tickets and
observer leases (:meth:`issue_ticket`, :meth:`claim_events`), each a statement or
two of its own, so they never wait for a batch of writes in this process.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import sqlite3
from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any

import anyio
from anyio.abc import TaskGroup

from storykit import tickets
from storykit._offload import off_loop
from storykit.auth import Principal
from storykit.errors import BackendError
from storykit.idempotency import IdempotentResult
from storykit.models import Event, Plan, Revision, Suggestion
from storykit.store import _schema
from storykit.store._batch import PendingWrite, commit_batch, prepare
from storykit.store._driver import Driver, Row, connect, rollback
from storykit.store._reads import DocumentReads
from storykit.store._values import event_id as _event_id
from storykit.store._values import limit as _limit
from storykit.store._writer import GroupWriter

__all__ = ["SqliteStore"]


class SqliteStore(DocumentReads):
    """The :class:`~storykit.store.Store` on one SQLite file."""

    PARAM = "?"

    def __init__(self, path: str | Path, *, max_batch: int = 1000) -> None:
        if str(path) == ":memory:" or not str(path):
            raise ValueError("SqliteStore needs a file: its two connections must share it")
        self.path = Path(path)
        self.max_batch = max_batch
        self._writer: Driver | None = None
        self._reader: Driver | None = None
        self._task_group: TaskGroup | None = None
        self._group = self._new_group()
        self._side: Driver | None = None
        self._side_lock = anyio.Lock()
        self.owner = secrets.token_hex(8)
        """Who this store is when it holds an observer's lease (one per open store)."""
        self._epoch: str | None = None

    @property
    def transactions(self) -> int:
        """Write transactions committed so far (fewer than :attr:`writes` under load)."""
        return self._group.transactions

    @property
    def writes(self) -> int:
        """Writes that committed (each appended one event)."""
        return self._group.writes

    def _new_group(self) -> GroupWriter:
        return GroupWriter(self._commit, max_batch=self.max_batch)

    async def _commit(self, batch: Sequence[PendingWrite]) -> bool:
        assert self._writer is not None
        return await commit_batch(self._writer, batch)

    # -- lifecycle -------------------------------------------------------------
    async def open(self) -> None:
        if self._task_group is not None:
            raise RuntimeError("the store is already open")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._writer = await _connect(self.path)
            await _schema.migrate(self._writer)
            self._reader = await _connect(self.path)
            await self._reader.execute("PRAGMA query_only = ON")
            self._side = await _connect(self.path)
            [(epoch,)] = await self._reader.execute("SELECT epoch FROM meta WHERE id = 1")
            self._epoch = str(epoch)
            task_group = anyio.create_task_group()
            await task_group.__aenter__()
        except BaseException:
            await self._close_connections()
            raise
        self._group = self._new_group()
        self._task_group = task_group
        task_group.start_soon(self._group.run)

    async def aclose(self) -> None:
        task_group, self._task_group = self._task_group, None
        if task_group is None:
            return
        self._group.close()  # the writer drains the queue, then returns
        try:
            await task_group.__aexit__(None, None, None)
            with anyio.CancelScope(shield=True):
                await self._release_leases()
        finally:
            await self._close_connections()

    async def __aenter__(self) -> SqliteStore:
        await self.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def _close_connections(self) -> None:
        with anyio.CancelScope(shield=True):  # a leaked connection keeps a thread alive
            for driver in (self._reader, self._writer, self._side):
                if driver is not None:
                    await driver.aclose()
        self._reader = self._writer = self._side = None

    async def ping(self) -> bool:
        try:
            return await self._read("SELECT 1") == [(1,)]
        except (BackendError, RuntimeError):
            return False

    # -- reads -------------------------------------------------------------------
    async def _read(self, sql: str, params: Sequence[object] = ()) -> list[Row]:
        if self._reader is None:
            raise RuntimeError("the store is not open")
        try:
            return await self._reader.execute(sql, params)
        except sqlite3.Error as exc:
            raise BackendError(f"database read failed: {exc}") from exc

    async def read_events(self, *, after: int = 0, limit: int = 100) -> list[Event]:
        rows = await self._read(
            "SELECT id, type, at, data FROM events WHERE id > ? ORDER BY id LIMIT ?",
            (_event_id(after), _limit(limit)),
        )
        return [
            Event(id=int(i), type=str(t), at=datetime.fromisoformat(at), data=json.loads(data))
            for i, t, at, data in rows
        ]

    async def last_event_id(self) -> int:
        [(last,)] = await self._read("SELECT COALESCE(MAX(id), 0) FROM events")
        return int(last)

    # -- shared state: tickets and observer progress --------------------------------
    async def _side_run(self, *statements: tuple[str, Sequence[object]]) -> list[Row]:
        """Run statements in one ``BEGIN IMMEDIATE`` transaction; the last one's rows."""
        if self._side is None:
            raise RuntimeError("the store is not open")
        rows: list[Row] = []
        async with self._side_lock:
            try:
                await self._side.execute("BEGIN IMMEDIATE")
                for sql, params in statements:
                    rows = await self._side.execute(sql, params)
                await self._side.execute("COMMIT")
            except sqlite3.Error as exc:
                await rollback(self._side)
                raise BackendError(f"database write failed: {exc}") from exc
            except BaseException:
                await rollback(self._side)
                raise
        return rows

    async def issue_ticket(self, principal: Principal, ttl: float) -> str:
        ticket = tickets.new_ticket()
        await self._side_run(
            (_PURGE_TICKETS, ()),
            (
                _INSERT_TICKET,
                (tickets.digest(ticket), principal.name, str(principal.role), float(ttl)),
            ),
        )
        return ticket

    async def redeem_ticket(self, ticket: str) -> Principal | None:
        rows = await self._side_run((_REDEEM_TICKET, (tickets.digest(ticket),)))
        if not rows or not rows[0][2]:
            return None
        return tickets.principal(rows[0][0], rows[0][1])

    async def record_delivery(self, forge: str, delivery: str) -> bool:
        rows = await self._side_run(
            (_PURGE_DELIVERIES, ()),
            (
                "INSERT INTO webhook_deliveries (forge, delivery, received_at)"
                " VALUES (?, ?, (julianday('now') - 2440587.5) * 86400.0)"
                " ON CONFLICT (forge, delivery) DO NOTHING RETURNING 1",
                (forge, delivery),
            ),
        )
        return bool(rows)

    async def ensure_cursors(self, observers: Sequence[str]) -> None:
        await self._side_run(
            *(
                (
                    "INSERT INTO observer_cursors (name, last_id)"
                    " SELECT ?, COALESCE(MAX(id), 0) FROM events"
                    " WHERE true ON CONFLICT (name) DO NOTHING",
                    (name,),
                )
                for name in observers
            )
        )

    @contextlib.asynccontextmanager
    async def claim_events(
        self, observer: str, *, limit: int = 100, lease: float = 30.0
    ) -> AsyncIterator[list[Event] | None]:
        """See :meth:`storykit.store.Store.claim_events`: here a lease row.

        The lease is taken (or renewed) in a ``BEGIN IMMEDIATE`` transaction, so of
        two processes exactly one gets it; it lasts ``lease`` seconds by SQLite's
        clock from each claim, and :meth:`aclose` gives it up.
        """
        rows = await self._side_run((_CLAIM, (self.owner, float(lease), observer, self.owner)))
        if not rows:  # another process holds it (or no cursor: ensure_cursors first)
            yield None
            return
        last = int(rows[0][0])
        events = await self.read_events(after=last, limit=limit)
        yield events
        # The observer has run these events: a shutdown now must not leave the cursor
        # behind, or another process would run them again.
        if events:
            with anyio.CancelScope(shield=True):
                await self._side_run(
                    (
                        "UPDATE observer_cursors SET last_id = ?"
                        " WHERE name = ? AND owner = ? AND last_id = ?",
                        (events[-1].id, observer, self.owner, last),
                    )
                )

    async def _release_leases(self) -> None:
        if self._side is None:
            return
        with contextlib.suppress(BackendError):
            await self._side_run(
                (
                    "UPDATE observer_cursors SET owner = NULL, lease_until = 0 WHERE owner = ?",
                    (self.owner,),
                )
            )

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
        if self._task_group is None or self._group.closing:
            raise RuntimeError("the store is not open")
        pending = await off_loop(  # serialising a 5 MB diff is no work for the event loop
            _size(suggestions, plans),
            lambda: prepare(
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
            ),
        )
        if self._task_group is None or self._group.closing:  # closed while that ran
            raise RuntimeError("the store is not open")
        return await self._group.submit(pending)


# Now, as Unix seconds with fractions, is SQLite's clock (julianday('now')): one clock
# for every process on the file.
_PURGE_TICKETS = (
    "DELETE FROM sse_tickets WHERE expires_at <= (julianday('now') - 2440587.5) * 86400.0"
)
_PURGE_DELIVERIES = (
    "DELETE FROM webhook_deliveries"
    " WHERE received_at <= (julianday('now') - 2440587.5) * 86400.0 - 30 * 86400.0"
)
_INSERT_TICKET = (
    "INSERT INTO sse_tickets (digest, principal, role, expires_at)"
    " VALUES (?, ?, ?, (julianday('now') - 2440587.5) * 86400.0 + ?)"
)
_REDEEM_TICKET = (
    "DELETE FROM sse_tickets WHERE digest = ? RETURNING principal, role,"
    " expires_at > (julianday('now') - 2440587.5) * 86400.0"
)
_CLAIM = (
    "UPDATE observer_cursors SET owner = ?,"
    " lease_until = (julianday('now') - 2440587.5) * 86400.0 + ?"
    " WHERE name = ? AND (owner = ? OR owner IS NULL"
    " OR lease_until <= (julianday('now') - 2440587.5) * 86400.0) RETURNING last_id"
)


async def _connect(path: Path) -> Driver:
    db = await connect(path)
    try:
        for pragma in _schema.PRAGMAS:
            await db.execute(pragma)
    except BaseException:
        with anyio.CancelScope(shield=True):
            await db.aclose()
        raise
    return db


def _size(suggestions: Sequence[Suggestion], plans: Sequence[Plan]) -> int:
    """About how much text a write serialises: its diffs (all else in it is small)."""
    if not suggestions and not plans:  # an event alone (progress, say): nothing big
        return 0
    diffs = [getattr(s, "diff", "") for s in suggestions]
    diffs += [getattr(v, "diff", "") for p in plans for v in getattr(p, "variants", ())]
    return sum(len(d) for d in diffs if isinstance(d, str))
