"""Group commit: apply many writes in one transaction with a handful of statements.

Each statement is a hop to the connection's thread (see :mod:`._driver`), so a
batch is applied set-wise, not write by write:

1. ``BEGIN IMMEDIATE`` takes SQLite's write lock. From here until ``COMMIT`` no
   other connection, in this process or another, can write, so what we read is
   current and the event ids we get are the next ones in the log.
2. Every ``expect`` in the batch is checked with one query, in Python, in
   submission order, counting the rows that earlier writes in the same batch
   change (and so is a write's ``policy_expect``, against the stored policy
   config). A stale write gets :class:`~storykit.errors.Conflict` and is left out
   before anything is written, so it needs no rollback.
3. The remaining writes' rows are upserted with one ``executemany`` per table,
   and their events appended with one multi-row ``INSERT … RETURNING id``, in
   submission order.
4. ``COMMIT``.

:func:`prepare` refuses what SQLite would not take (text UTF-8 cannot hold, say)
in the caller's task, before anything is queued. If a batch still fails for a
reason tied to one write's values (a constraint or trigger, a value sqlite3
cannot bind) the transaction is rolled back and the batch retried with a
SAVEPOINT per write: the bad write is rolled back alone and its caller gets
:class:`~storykit.errors.Invalid`; the others commit, each with its own outcome.
Any other database error (disk full, locked past ``busy_timeout``) fails the
whole batch, and every caller gets a :class:`~storykit.errors.BackendError`.
Either way nothing is half-written.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import sqlite3
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol

from storykit._unicode import require_utf8
from storykit.errors import BackendError, Conflict, Invalid
from storykit.idempotency import IdempotentResult
from storykit.models import (
    Event,
    Plan,
    PRState,
    PullRequest,
    Revision,
    Risk,
    Status,
    Suggestion,
    to_dict,
    utcnow,
)
from storykit.store._driver import Driver, rollback

__all__ = ["PendingWrite", "accept", "commit_batch", "dumps", "prepare"]

# Errors caused by the values of one write, which retrying write by write isolates:
# SQLite refusing them (a constraint, a trigger, too big) or sqlite3 failing to bind
# them (text UTF-8 cannot hold is a UnicodeEncodeError, an integer beyond 64 bits an
# OverflowError, an unsupported type a ProgrammingError). The database's own
# failures (OperationalError: disk full, locked) are not among them.
_DATA_ERRORS = (
    sqlite3.IntegrityError,
    sqlite3.DataError,
    sqlite3.InterfaceError,
    sqlite3.ProgrammingError,
    UnicodeError,
    OverflowError,
)

_UPSERT_SUGGESTION = """
    INSERT INTO suggestions (id, status, source, agent, risk, created_at, updated_at, doc)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?)
    ON CONFLICT (id) DO UPDATE SET
        status = excluded.status, source = excluded.source, agent = excluded.agent,
        risk = excluded.risk, created_at = excluded.created_at,
        updated_at = excluded.updated_at, doc = excluded.doc
"""
_INSERT_REVISION = """
    INSERT INTO suggestion_revisions (suggestion_id, number, at, doc) VALUES (?, ?, ?, ?)
"""
_UPSERT_PLAN = """
    INSERT INTO plans (id, created_at, updated_at, doc) VALUES (?, ?, ?, ?)
    ON CONFLICT (id) DO UPDATE SET
        created_at = excluded.created_at, updated_at = excluded.updated_at, doc = excluded.doc
"""
_INSERT_KEY = """
    INSERT INTO idempotency_keys
        (agent, route, key, request_hash, suggestion_id, response, created_at)
    VALUES (?, ?, ?, ?, ?, ?, ?)
"""
_UPSERT_POLICY = """
    INSERT INTO policy_config (id, updated_at, doc) VALUES (1, ?, ?)
    ON CONFLICT (id) DO UPDATE SET updated_at = excluded.updated_at, doc = excluded.doc
"""
_UPSERT_PULL = """
    INSERT INTO pull_requests (backend, repository, number, plan_id, state) VALUES (?, ?, ?, ?, ?)
    ON CONFLICT (backend, repository, number) DO UPDATE SET
        plan_id = excluded.plan_id, state = excluded.state
"""
# received_at: Unix seconds by SQLite's clock (julianday('now')), one clock for every process.
_INSERT_DELIVERY = """
    INSERT INTO webhook_deliveries (forge, delivery, received_at)
    VALUES (?, ?, (julianday('now') - 2440587.5) * 86400.0)
"""
# One multi-row INSERT … RETURNING per this many events: one hop to the thread for
# the ids instead of three. 3 parameters each stays under SQLite's oldest limit (999).
_EVENTS_PER_STATEMENT = 300
_VERSIONS = """
    SELECT id, updated_at FROM suggestions WHERE id IN (SELECT value FROM json_each(?1))
    UNION ALL
    SELECT id, updated_at FROM plans WHERE id IN (SELECT value FROM json_each(?1))
"""


# Built once: json.dumps with any option builds a new encoder per call, which is a
# good part of a small write's cost.
_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def dumps(value: object) -> str:
    """Compact, strict JSON (no NaN: other readers of the file would choke on it)."""
    return _ENCODER.encode(value)


@dataclasses.dataclass(eq=False, slots=True, kw_only=True)
class PendingWrite:
    """One caller's write, serialised and validated, waiting for the writer task."""

    event_type: str
    data: Mapping[str, Any]
    data_json: str
    suggestion_rows: list[tuple[str, ...]]
    plan_rows: list[tuple[str, ...]]
    revision_rows: list[tuple[str, int, datetime, str]]
    policy_json: str | None
    expect: dict[str, datetime]
    versions: dict[str, datetime]  # the updated_at this write gives each row it touches
    policy_expect: Any = None  # the stored policy config this write expects; None: any
    key_row: tuple[str, ...] | None = None  # an idempotency key (storykit.idempotency)
    settled: bool = False  # ``event`` or ``error`` is set: the caller may go
    pull_rows: list[tuple[Any, ...]] = dataclasses.field(default_factory=list)
    delivery_row: tuple[str, str] | None = None  # a webhook delivery (storykit.webhooks)
    taken: bool = False  # the writer has it; too late to withdraw
    cancelled: bool = False  # the caller gave up before the writer took it
    event: Event | None = None
    error: Exception | None = None


def prepare(
    event_type: str,
    data: Mapping[str, Any],
    *,
    suggestions: Sequence[Suggestion],
    plans: Sequence[Plan],
    policy_config: Mapping[str, Any] | None,
    expect: Mapping[str, datetime] | None,
    policy_expect: Mapping[str, Any] | None = None,
    idempotency: IdempotentResult | None = None,
    delivery: tuple[str, str] | None = None,
    revisions: Sequence[Revision] = (),
) -> PendingWrite:
    """Validate and serialise in the caller's task, so bad input fails there, queueing nothing."""
    if not isinstance(event_type, str) or not event_type:
        raise Invalid(f"event type must be a non-empty string, not {event_type!r}")
    require_utf8(event_type, "event type")
    data_json = _json(data, "event data")
    versions: dict[str, datetime] = {}
    suggestion_rows = [_suggestion_row(s, versions) for s in suggestions]
    plan_rows = [_plan_row(p, versions) for p in plans]
    revision_rows = [_revision_row(r, versions) for r in revisions]
    policy_json = None if policy_config is None else _json(policy_config, "policy config")
    expected = dict(expect or {})
    for key, value in expected.items():
        if not isinstance(value, datetime):
            raise Invalid(f"expect[{key!r}] must be a datetime, not {value!r}")
    return PendingWrite(
        event_type=event_type,
        # What the log gives back, so a live event equals the same event replayed from it.
        data=_as_read_back(data, data_json),
        data_json=data_json,
        suggestion_rows=suggestion_rows,
        plan_rows=plan_rows,
        revision_rows=revision_rows,
        policy_json=policy_json,
        expect=expected,
        versions=versions,
        policy_expect=None
        if policy_expect is None
        else _as_read_back(policy_expect, _json(policy_expect, "expect")),
        key_row=None if idempotency is None else _key_row(idempotency),
        pull_rows=[_pull_row(p, pr) for p in plans for pr in p.pull_requests],
        delivery_row=None if delivery is None else _delivery_row(delivery),
    )


_SCALARS = frozenset({str, int, float, bool, type(None)})


def _as_read_back(value: Mapping[str, Any], text: str) -> dict[str, Any]:
    """``value`` as reading ``text`` (its JSON) back would give it. Most event data is one
    flat mapping of plain scalars, which a shallow copy reproduces exactly; anything else
    (nested values, tuples, enums, non-string keys) takes the JSON round trip."""
    if type(value) is dict and all(
        type(k) is str and type(v) in _SCALARS for k, v in value.items()
    ):
        return value.copy()
    loaded: dict[str, Any] = json.loads(text)
    return loaded


def _pull_row(p: Plan, pr: PullRequest) -> tuple[Any, ...]:
    """The index row of a pull request a plan holds (the plan's document is the record)."""
    if not isinstance(pr, PullRequest) or not isinstance(pr.number, int):
        raise Invalid(f"plan {p.id}: not a PullRequest: {pr!r}")
    fields = (pr.backend, pr.repository)
    if not all(isinstance(f, str) and f for f in fields):
        raise Invalid(f"plan {p.id}: a pull request needs a backend and a repository")
    return (
        require_utf8(pr.backend, "backend"),
        require_utf8(pr.repository, "repository"),
        pr.number,
        p.id,
        PRState(pr.state).value,
    )


def _delivery_row(delivery: tuple[str, str]) -> tuple[str, str]:
    forge, ident = delivery
    if not (isinstance(forge, str) and forge and isinstance(ident, str) and ident):
        raise Invalid(f"a delivery is (forge, id), not {delivery!r}")
    return (require_utf8(forge, "forge"), require_utf8(ident, "delivery id"))


def _key_row(r: IdempotentResult) -> tuple[str, ...]:
    response = _json(r.response, "idempotent response")
    stamp = utcnow().isoformat()
    return (r.agent, r.route, r.key, r.request_hash, r.suggestion_id, response, stamp)


def _json(value: object, what: str) -> str:
    if not isinstance(value, Mapping):
        raise Invalid(f"{what} must be a mapping, not {type(value).__name__}")
    try:
        text = dumps(value)
    except (TypeError, ValueError) as exc:
        raise Invalid(f"{what} is not JSON-serialisable: {exc}") from exc
    # Every text column is JSON or a value inside it (ids, source, agent), so this one
    # check keeps text SQLite cannot encode out of the batch, where it would fail the rest.
    return require_utf8(text, what)


def _stamps(value: Suggestion | Plan) -> tuple[str, str]:
    if not isinstance(value.id, str) or not value.id:
        raise Invalid(f"id must be a non-empty string, not {value.id!r}")
    if not (isinstance(value.created_at, datetime) and isinstance(value.updated_at, datetime)):
        raise Invalid(f"{value.id}: created_at and updated_at must be datetimes")
    return value.created_at.isoformat(), value.updated_at.isoformat()


def _suggestion_row(s: Suggestion, versions: dict[str, datetime]) -> tuple[str, ...]:
    if not isinstance(s, Suggestion):
        raise Invalid(f"not a Suggestion: {s!r}")
    created, updated = _stamps(s)
    try:
        status, risk = Status(s.status), Risk(s.risk)
    except ValueError as exc:
        raise Invalid(f"{s.id}: {exc}") from exc
    versions[s.id] = s.updated_at
    doc = _json(to_dict(s), f"suggestion {s.id}")
    return (s.id, status.value, s.source, s.agent, risk.value, created, updated, doc)


def _revision_row(r: Revision, versions: dict[str, datetime]) -> tuple[str, int, datetime, str]:
    """A revision is written with its suggestion, never alone (the row refers to it)."""
    if not isinstance(r, Revision):
        raise Invalid(f"not a Revision: {r!r}")
    suggestion_id = r.suggestion_id
    if suggestion_id not in versions:
        raise Invalid(f"revision {r.number} of {suggestion_id} is written without its suggestion")
    if not isinstance(r.at, datetime):
        raise Invalid(f"{suggestion_id} revision {r.number}: at must be a datetime")
    doc = _json(to_dict(r), f"revision {r.number} of {suggestion_id}")
    return (suggestion_id, int(r.number), r.at, doc)


def _plan_row(p: Plan, versions: dict[str, datetime]) -> tuple[str, ...]:
    if not isinstance(p, Plan):
        raise Invalid(f"not a Plan: {p!r}")
    created, updated = _stamps(p)
    versions[p.id] = p.updated_at
    return (p.id, created, updated, _json(to_dict(p), f"plan {p.id}"))


async def commit_batch(db: Driver, batch: Sequence[PendingWrite]) -> bool:
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
        _fail(batch, exc)
        return False
    try:
        await _transaction(db, batch, isolate=True)
        return True
    except Exception as exc:
        await rollback(db)
        _fail(batch, exc)
        return False


def _fail(batch: Sequence[PendingWrite], exc: Exception) -> None:
    for w in batch:
        w.event = None
        # One exception object per caller: each re-raises it in its own task.
        w.error = BackendError(f"database write failed: {exc}")
        w.error.__cause__ = exc


async def _transaction(db: Driver, batch: Sequence[PendingWrite], *, isolate: bool) -> None:
    at = utcnow()
    for w in batch:
        w.event, w.error = None, None
    await db.execute("BEGIN IMMEDIATE")
    if not isolate:
        await _apply(db, batch, at)
    else:
        for w in batch:
            await db.execute("SAVEPOINT one_write")
            try:
                await _apply(db, [w], at)
            except _DATA_ERRORS as exc:
                await db.execute("ROLLBACK TO one_write")
                w.event = None
                w.error = Invalid(f"the database refused this write: {exc}")
                w.error.__cause__ = exc
            await db.execute("RELEASE one_write")
    await db.execute("COMMIT")


class Executor(Protocol):
    """What :func:`upsert_rows` needs of a connection: both stores' drivers have it."""

    async def execute(self, sql: str, params: Sequence[object] = ()) -> Any: ...

    async def executemany(self, sql: str, rows: Sequence[Sequence[object]]) -> None: ...


@dataclasses.dataclass(frozen=True, slots=True)
class RowStatements:
    """One store's SQL for each kind of row a batch writes besides its events."""

    upsert_suggestion: str
    insert_revision: str
    upsert_plan: str
    insert_key: str
    upsert_pull: str
    insert_delivery: str
    upsert_policy: str


async def upsert_rows(
    db: Executor,
    accepted: Sequence[PendingWrite],
    sql: RowStatements,
    *,
    stamp: object,
    when: Callable[[datetime], object],
) -> None:
    """Write every row of the ``accepted`` writes but their events, kind by kind: one
    ``executemany`` per kind. ``stamp`` is the batch's time as the store keeps it, and
    ``when`` turns a revision's time into that form."""
    suggestion_rows = [row for w in accepted for row in w.suggestion_rows]
    if suggestion_rows:
        await db.executemany(sql.upsert_suggestion, suggestion_rows)
    revision_rows = [
        (key, number, when(made), doc)
        for w in accepted
        for key, number, made, doc in w.revision_rows
    ]
    if revision_rows:
        await db.executemany(sql.insert_revision, revision_rows)
    plan_rows = [row for w in accepted for row in w.plan_rows]
    if plan_rows:
        await db.executemany(sql.upsert_plan, plan_rows)
    key_rows = [w.key_row for w in accepted if w.key_row is not None]
    if key_rows:  # a key used twice fails here, and the batch is retried write by write
        await db.executemany(sql.insert_key, key_rows)
    pull_rows = [row for w in accepted for row in w.pull_rows]
    if pull_rows:
        await db.executemany(sql.upsert_pull, pull_rows)
    delivery_rows = [w.delivery_row for w in accepted if w.delivery_row is not None]
    if delivery_rows:  # a delivery handled twice fails here, like a key used twice
        await db.executemany(sql.insert_delivery, delivery_rows)
    policies = [(stamp, w.policy_json) for w in accepted if w.policy_json is not None]
    if policies:
        await db.execute(sql.upsert_policy, policies[-1])  # only the last one can survive


_ROWS = RowStatements(
    upsert_suggestion=_UPSERT_SUGGESTION,
    insert_revision=_INSERT_REVISION,
    upsert_plan=_UPSERT_PLAN,
    insert_key=_INSERT_KEY,
    upsert_pull=_UPSERT_PULL,
    insert_delivery=_INSERT_DELIVERY,
    upsert_policy=_UPSERT_POLICY,
)


async def _apply(db: Driver, writes: Sequence[PendingWrite], at: datetime) -> None:
    current = await _versions(db, {key for w in writes for key in w.expect})
    policy = await _policy(db) if any(w.policy_expect is not None for w in writes) else None
    accepted = accept(writes, current, policy)
    if not accepted:
        return
    stamp = at.isoformat()
    await upsert_rows(db, accepted, _ROWS, stamp=stamp, when=datetime.isoformat)
    for start in range(0, len(accepted), _EVENTS_PER_STATEMENT):
        chunk = accepted[start : start + _EVENTS_PER_STATEMENT]
        rows = await db.execute(
            _insert_events(len(chunk)),
            [value for w in chunk for value in (w.event_type, stamp, w.data_json)],
        )
        # RETURNING promises no row order, but AUTOINCREMENT gives the VALUES rows
        # increasing ids in the order written, so the sorted ids line up with chunk.
        ids = sorted(int(event_id) for (event_id,) in rows)
        for w, event_id in zip(chunk, ids, strict=True):
            w.event = Event(id=event_id, type=w.event_type, data=w.data, at=at)


@functools.lru_cache(maxsize=32)
def _insert_events(n: int) -> str:
    values = ", ".join(["(?, ?, ?)"] * n)
    return f"INSERT INTO events (type, at, data) VALUES {values} RETURNING id"  # noqa: S608


def accept(
    writes: Sequence[PendingWrite], current: dict[str, datetime], policy: Any
) -> list[PendingWrite]:
    """The writes whose ``expect`` and ``policy_expect`` hold, in submission order; each
    stale one gets its :class:`~storykit.errors.Conflict`. ``current`` (the rows'
    ``updated_at``) and ``policy`` (the stored config) are what the database holds, and
    each accepted write's changes count for the writes after it in the same batch."""
    accepted: list[PendingWrite] = []
    for w in writes:
        stale = sorted(key for key, seen in w.expect.items() if current.get(key) != seen)
        if w.policy_expect is not None and w.policy_expect != policy:
            stale.append("the policy document")
        if stale:
            w.error = Conflict(f"changed since it was read: {', '.join(stale)}")
            continue
        current.update(w.versions)
        if w.policy_json is not None:
            policy = json.loads(w.policy_json)
        accepted.append(w)
    return accepted


async def _policy(db: Driver) -> Any:
    """The stored policy config; none stored reads as ``{}`` (the same effective document)."""
    rows = await db.execute("SELECT doc FROM policy_config WHERE id = 1")
    return json.loads(rows[0][0]) if rows else {}


async def _versions(db: Driver, ids: set[str]) -> dict[str, datetime]:
    if not ids:
        return {}
    rows = await db.execute(_VERSIONS, (dumps(sorted(ids)),))
    return {str(key): datetime.fromisoformat(stamp) for key, stamp in rows}
