"""Group commit on PostgreSQL: the SQLite store's batch (:mod:`._batch`), in PostgreSQL's SQL.

Writes are validated and serialised by :func:`storykit.store._batch.prepare`, as
on SQLite. A batch is one transaction of a handful of statements, whatever its
size:

1. ``BEGIN``, then lock the one row of ``event_counter`` (``SELECT … FOR UPDATE``)
   and read the last event id handed out. Every write transaction, in this
   process or another replica, takes this lock first and holds it to ``COMMIT``:
   SQLite's ``BEGIN IMMEDIATE``. So what we read next is current, and the ids we
   number our events with are the next ones in the log, committed after every
   smaller id and before every larger one. A reader polling ``id > cursor`` can
   therefore never see id n+1 while n is still to come and skip n for good, which
   is what ids from a sequence allow (n is taken, n+1 is taken and committed
   first).
2. Every ``expect`` in the batch is checked with one query, in Python, in
   submission order, counting the rows that earlier writes in the same batch
   change. A stale write gets :class:`~storykit.errors.Conflict` and is left out.
3. The remaining writes' rows are upserted with one ``executemany`` per table,
   and their events appended with one ``COPY``, numbered in submission order.
4. The counter is set to the last id used, and ``COMMIT``.

If PostgreSQL rejects the data (a constraint, a trigger, a value it cannot
store) the transaction is rolled back and the batch retried with a SAVEPOINT per
write, checking ``expect`` per write in SQL: the bad write is rolled back alone
and its caller gets :class:`~storykit.errors.Invalid`; the others commit, with no
hole in the ids. Any other database error fails the whole batch: every caller
gets :class:`~storykit.errors.Unavailable` if the database cannot be reached, a
:class:`~storykit.errors.BackendError` otherwise (a lock held past
``lock_timeout``, say).

The commit also sends ``NOTIFY storykit_events`` with the new head id, delivered
to every replica's listener when the transaction commits (see
:meth:`storykit.store.postgres.PostgresStore.watch`). Either way nothing is half-written.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import psycopg
import psycopg.errors

from storykit.errors import BackendError, Invalid, Unavailable
from storykit.models import Event, utcnow
from storykit.store._batch import PendingWrite, RowStatements, accept, upsert_rows
from storykit.store._pg_driver import Connection, is_unavailable, rollback

__all__ = ["commit_batch", "fail"]

# Errors caused by the rows themselves, which retrying write by write can isolate:
# a value PostgreSQL cannot store (class 22, e.g. a NUL character in text), a
# constraint (class 23), a trigger refusing the row (RAISE EXCEPTION).
_DATA_ERRORS = (psycopg.DataError, psycopg.IntegrityError, psycopg.errors.RaiseException)

# One round trip each: several statements without parameters go as one message.
_BEGIN = "BEGIN; SELECT last_id FROM event_counter WHERE id = 1 FOR UPDATE"
# NOTIFY is delivered at COMMIT, so a listener woken by it finds the events in the
# log. The payload is the new head id only: far under NOTIFY's 8000-byte limit.
_COMMIT = (
    "UPDATE event_counter SET last_id = {last_id:d} WHERE id = 1;"
    " SELECT pg_notify('storykit_events', '{last_id:d}'); COMMIT"  # _pg_driver.CHANNEL
)
_UPSERT_SUGGESTION = """
    INSERT INTO suggestions (id, status, source, agent, risk, created_at, updated_at, doc)
    VALUES (%s, %s, %s, %s, %s, %s, %s, %s)
    ON CONFLICT (id) DO UPDATE SET
        status = excluded.status, source = excluded.source, agent = excluded.agent,
        risk = excluded.risk, created_at = excluded.created_at,
        updated_at = excluded.updated_at, doc = excluded.doc
"""
_INSERT_REVISION = """
    INSERT INTO suggestion_revisions (suggestion_id, number, at, doc) VALUES (%s, %s, %s, %s)
"""
_UPSERT_PLAN = """
    INSERT INTO plans (id, created_at, updated_at, doc) VALUES (%s, %s, %s, %s)
    ON CONFLICT (id) DO UPDATE SET
        created_at = excluded.created_at, updated_at = excluded.updated_at, doc = excluded.doc
"""
_INSERT_KEY = """
    INSERT INTO idempotency_keys
        (agent, route, key, request_hash, suggestion_id, response, created_at)
    VALUES (%s, %s, %s, %s, %s, %s, %s)
"""
_UPSERT_POLICY = """
    INSERT INTO policy_config (id, updated_at, doc) VALUES (1, %s, %s)
    ON CONFLICT (id) DO UPDATE SET updated_at = excluded.updated_at, doc = excluded.doc
"""
_UPSERT_PULL = """
    INSERT INTO pull_requests (backend, repository, number, plan_id, state)
    VALUES (%s, %s, %s, %s, %s)
    ON CONFLICT (backend, repository, number) DO UPDATE SET
        plan_id = excluded.plan_id, state = excluded.state
"""
_INSERT_DELIVERY = "INSERT INTO webhook_deliveries (forge, delivery) VALUES (%s, %s)"
_ROWS = RowStatements(
    upsert_suggestion=_UPSERT_SUGGESTION,
    insert_revision=_INSERT_REVISION,
    upsert_plan=_UPSERT_PLAN,
    insert_key=_INSERT_KEY,
    upsert_pull=_UPSERT_PULL,
    insert_delivery=_INSERT_DELIVERY,
    upsert_policy=_UPSERT_POLICY,
)
# One statement for any number of events. COPY is the cheapest way in: about 2.5x
# an INSERT … SELECT FROM unnest(arrays), whose text arrays psycopg must escape.
_COPY_EVENTS = "COPY events (id, type, at, data) FROM STDIN"
_VERSIONS = """
    SELECT id, updated_at FROM suggestions WHERE id = ANY(%s::text[])
    UNION ALL
    SELECT id, updated_at FROM plans WHERE id = ANY(%s::text[])
"""


async def commit_batch(db: Connection, batch: Sequence[PendingWrite]) -> bool:
    """Run ``batch`` in one transaction; set each write's ``event`` or ``error``.

    Returns whether a transaction was committed. Never raises for a database
    error: that is the callers' to see, each through its own ``error``.
    """
    try:
        await _transaction(db, batch, isolate=False)
        return True
    except _DATA_ERRORS:
        await rollback(db)
    except Exception as exc:
        await rollback(db)
        fail(batch, exc)
        return False
    try:
        await _transaction(db, batch, isolate=True)
        return True
    except Exception as exc:
        await rollback(db)
        fail(batch, exc)
        return False


def fail(batch: Sequence[PendingWrite], exc: Exception) -> None:
    """Give every write in ``batch`` a :class:`BackendError` caused by ``exc``
    (:class:`Unavailable` if the database cannot be reached)."""
    for w in batch:
        w.event = None
        # One exception object per caller: each re-raises it in its own task.
        w.error = (
            Unavailable(f"the database is unavailable ({exc}); nothing was written, retry later")
            if is_unavailable(exc)
            else BackendError(f"database write failed: {exc}")
        )
        w.error.__cause__ = exc


async def _transaction(db: Connection, batch: Sequence[PendingWrite], *, isolate: bool) -> None:
    at = utcnow()
    for w in batch:
        w.event, w.error = None, None
    [(last_id,)] = await db.execute(_BEGIN)
    next_id = int(last_id) + 1
    if not isolate:
        next_id = await _apply(db, batch, at, next_id)
    else:
        for w in batch:
            await db.execute("SAVEPOINT one_write")
            try:
                next_id = await _apply(db, [w], at, next_id)
            except _DATA_ERRORS as exc:
                await db.execute("ROLLBACK TO SAVEPOINT one_write")
                w.event = None
                w.error = Invalid(f"the database refused this write: {exc}")
                w.error.__cause__ = exc
            await db.execute("RELEASE SAVEPOINT one_write")
    if next_id == int(last_id) + 1:
        await db.execute("COMMIT")  # no event appended: every write was refused
    else:  # :d formats an int, nothing else: no injection
        await db.execute(_COMMIT.format(last_id=next_id - 1))


async def _apply(db: Connection, writes: Sequence[PendingWrite], at: datetime, next_id: int) -> int:
    """Check, upsert and append ``writes``, numbering events from ``next_id``.

    Returns the next id still free; ``w.event`` is set only once its event is in.
    """
    current = await _versions(db, {key for w in writes for key in w.expect})
    policy = await _policy(db) if any(w.policy_expect is not None for w in writes) else None
    accepted = accept(writes, current, policy)
    if not accepted:
        return next_id
    await upsert_rows(db, accepted, _ROWS, stamp=at, when=lambda made: made)
    ids = range(next_id, next_id + len(accepted))
    await db.copy(
        _COPY_EVENTS,
        [
            (event_id, w.event_type, at, w.data_json)
            for w, event_id in zip(accepted, ids, strict=True)
        ],
    )
    for w, event_id in zip(accepted, ids, strict=True):
        w.event = Event(id=event_id, type=w.event_type, data=w.data, at=at)
    return next_id + len(accepted)


async def _policy(db: Connection) -> Any:
    """The stored policy config; none stored reads as ``{}`` (the same effective document)."""
    rows = await db.execute("SELECT doc FROM policy_config WHERE id = 1")
    return json.loads(rows[0][0]) if rows else {}


async def _versions(db: Connection, ids: set[str]) -> dict[str, datetime]:
    if not ids:
        return {}
    wanted = sorted(ids)
    rows = await db.execute(_VERSIONS, (wanted, wanted))
    return {str(key): stamp for key, stamp in rows}
